/**
 * The network layer: what the container life cycle and the API ask of it. The service behind this
 * interface owns networks (bridge, host, none, macvlan; overlay later), IPAM, endpoints, port
 * publishing, firewall rules and the embedded DNS. Drivers (`drivers.ts`) implement the per-kind work.
 */
import type { ContainerRecord, EndpointSettings } from '../model/container.js';
import type { Filters } from '../model/filters.js';
import type { IpamConfigEntry, NetworkRecord } from './types.js';

export interface NetworkAttachment {
  /** Path of the network namespace to join (e.g. `/run/netns/<name>`); absent: a new private one. */
  netnsPath?: string;
  /** True for `--network host`: no network namespace at all. */
  hostNetwork: boolean;
  /** Lines for `/etc/hosts` beyond localhost and the container's own name (e.g. `--add-host`, `--link`). */
  hosts: string[];
  /** The container's own addresses, for its `/etc/hosts` line. */
  addresses: string[];
  /** `/etc/resolv.conf` content for the container. */
  resolvConf: string;
  /** `NetworkSettings` as inspect shows them, after the attachment. */
  settings: ContainerRecord['NetworkSettings'];
}

/** `POST /networks/create` body. */
export interface NetworkCreateRequest {
  Name: string;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  EnableIPv6?: boolean;
  EnableIPv4?: boolean;
  ConfigOnly?: boolean;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
  IPAM?: {
    Driver?: string;
    Options?: Record<string, string> | null;
    Config?: IpamConfigEntry[] | null;
  } | null;
}

/** A network as `GET /networks/{id}` returns it. */
export type NetworkView = Omit<NetworkRecord, 'ifname' | 'mtu' | 'predefined'> & {
  Containers: Record<
    string,
    { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }
  >;
};

export interface NetworkService {
  /** Checks a create request's NetworkMode/EndpointsConfig before the container is recorded (unknown network → 404). */
  validate(record: ContainerRecord): Promise<void>;
  /** The networks a created container will join, as inspect lists them before it runs (no addresses yet). */
  plannedNetworks(record: ContainerRecord): Record<string, EndpointSettings>;
  /** Sets up networking for a container about to start; reversed by `detach`. */
  attach(record: ContainerRecord): Promise<NetworkAttachment>;
  /** Releases everything `attach` made (addresses, links, rules, netns). Idempotent. */
  detach(record: ContainerRecord): Promise<void>;
  /** Called on daemon start with the containers still running, to restore DNS and reconcile rules. */
  restore(running: ContainerRecord[]): Promise<void>;
  close(): Promise<void>;

  // The /networks API.
  list(filters: Filters): Promise<NetworkView[]>;
  inspect(ref: string): Promise<NetworkView>;
  create(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }>;
  remove(ref: string): Promise<void>;
  prune(filters: Filters): Promise<string[]>;
  /**
   * Connects a container: plugged in at once when it runs. Returns the record's new network
   * fields; the container service stores them (this layer never writes container records).
   */
  connect(ref: string, record: ContainerRecord, config: EndpointSettings | null | undefined): Promise<NetworkChange>;
  disconnect(ref: string, record: ContainerRecord): Promise<NetworkChange>;
  /** `disconnect -f` of a container that no longer exists: drops its endpoint; false when it has none. */
  disconnectGone(ref: string, containerRef: string): Promise<boolean>;
}

/** A container record's network fields after a connect or disconnect. */
export interface NetworkChange {
  EndpointsConfig: Record<string, EndpointSettings>;
  NetworkMode: string | undefined;
  NetworkSettings: ContainerRecord['NetworkSettings'];
  PrimaryNetworkLeft: boolean | undefined;
}
