/** The network layer's persisted state: networks (as the API shows them), endpoints, sandboxes. */

export type DriverName = 'bridge' | 'host' | 'null' | 'macvlan' | 'overlay';

export interface IpamConfigEntry {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

/** A network as `GET /networks/{id}` shows it, plus private fields (lower case) that are stripped. */
export interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  /** `global`: an overlay network, the same on every host of the cluster. */
  Scope: 'local' | 'global';
  Driver: DriverName;
  EnableIPv4: boolean;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamConfigEntry[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** Host link: the bridge (bridge and overlay drivers) or the parent link (macvlan). */
  ifname?: string;
  mtu?: number;
  /** One of the three predefined networks (cannot be removed). */
  predefined?: boolean;
}

export interface EndpointState {
  id: string;
  containerId: string;
  networkId: string;
  /** Interface name inside the container (eth0, eth1…). */
  ifName: string;
  /** Host end of the veth pair (bridge driver). */
  hostIf?: string;
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  aliases: string[];
  dnsNames: string[];
}

export interface PortMapping {
  proto: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  containerPort: number;
  containerIp: string;
  /** Bridge the container address lives on. */
  ifname: string;
}

/** A container's network namespace and what was set up in it while it runs. */
export interface SandboxState {
  containerId: string;
  netns: string;
  ports: PortMapping[];
}

export interface NetworkState {
  networks: NetworkRecord[];
  endpoints: EndpointState[];
  sandboxes: SandboxState[];
}
