/**
 * The network layer: what the container life cycle asks of it. The service behind this interface
 * owns networks (bridge, host, none, macvlan; overlay later), IPAM, endpoints, port publishing,
 * firewall rules and the embedded DNS. Drivers implement the per-kind work.
 */
import type { ContainerRecord } from '../containers/types.js';

export interface NetworkAttachment {
  /** Path of the network namespace to join (e.g. `/run/berth/netns/<id>`); absent: a new private one. */
  netnsPath?: string;
  /** True for `--network host`: no network namespace at all. */
  hostNetwork: boolean;
  /** Lines for `/etc/hosts` beyond localhost and the container's own name (e.g. `--add-host`, aliases). */
  hosts: string[];
  /** The container's own addresses, for its `/etc/hosts` line. */
  addresses: string[];
  /** `/etc/resolv.conf` content for the container. */
  resolvConf: string;
  /** `NetworkSettings` as inspect shows them, after the attachment. */
  settings: ContainerRecord['NetworkSettings'];
}

export interface NetworkService {
  /** Checks a create request's NetworkMode/EndpointsConfig before the container is recorded (unknown network → 404). */
  validate(record: ContainerRecord): Promise<void>;
  /** Sets up networking for a container about to start; reversed by `detach`. */
  attach(record: ContainerRecord): Promise<NetworkAttachment>;
  /** Releases everything `attach` made (addresses, links, rules, netns). Idempotent. */
  detach(record: ContainerRecord): Promise<void>;
  /** Called on daemon start with the containers still running, to restore DNS and reconcile rules. */
  restore(running: ContainerRecord[]): Promise<void>;
  close(): Promise<void>;
}
