/**
 * The network layer's records: networks, endpoints and sandboxes in one JSON file written
 * atomically (it survives a daemon restart; host objects outlive the daemon and are reconciled with
 * it at start-up), the three predefined networks, lookups by ID, name or prefix, and each network's
 * subnet plan.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ContainerRecord } from '../model/container.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import { notFound, systemError } from '../util/errors.js';
import { readJsonOr, writeJsonAtomic } from '../util/fsx.js';
import { newId } from '../util/ids.js';
import { log } from '../util/log.js';
import { BRIDGE_NAME_OPTION, MTU_OPTION } from './drivers.js';
import { hostRoutes } from './host.js';
import {
  type Cidr,
  carveSubnet,
  formatCidr,
  ipToNum,
  numToIp,
  overlaps,
  parseCidr,
  planSubnet,
  type SubnetPlan,
} from './ipam.js';
import type { EndpointState, NetworkRecord, NetworkState } from './types.js';

/** Docker's default address pools. */
export const DEFAULT_POOLS = [
  ...Array.from({ length: 14 }, (_, i) => ({ base: `172.${18 + i}.0.0/16`, size: 16 })),
  { base: '192.168.0.0/16', size: 20 },
];

/** The instance's own /20 in 10.0.0.0/8 (test daemons): its default bridge and its pool. */
function instanceBlock(instance: string, attempt: number): Cidr {
  const idx = ((parseInt(instance, 16) + attempt * 7919) % 3840) + 256;
  return { base: (ipToNum('10.0.0.0') + idx * 4096) >>> 0, prefix: 20 };
}

export class NetworkStore {
  state: NetworkState = { networks: [], endpoints: [], sandboxes: [] };
  /** Endpoints of other hosts on overlay networks (the cluster's; for the embedded DNS). */
  remoteEndpoints: () => EndpointState[] = () => [];
  /** Pools user networks without a subnet are carved from. */
  pools: { base: string; size: number }[] = [];
  private readonly file: string;

  constructor(private readonly config: DaemonConfig) {
    this.file = path.join(config.dataRoot, 'network', 'state.json');
  }

  async load(): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    this.state = await this.readState();
    await this.ensurePredefined();
  }

  /**
   * The saved state, never a reason not to start: a file that does not parse, or networks without
   * a string name and ID (an older berthd stored `"Name": 5`), are set aside beside it
   * (`state.json.unreadable-<time>`) and logged; berthd starts with what is usable.
   */
  private async readState(): Promise<NetworkState> {
    let raw: Partial<NetworkState> | null;
    try {
      raw = await readJsonOr<Partial<NetworkState> | null>(this.file, null);
    } catch (err) {
      log.error('network state unreadable: set aside; starting with the predefined networks', { err: String(err) });
      await fs.rename(this.file, `${this.file}.unreadable-${Date.now()}`).catch(() => {});
      raw = null;
    }
    const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
    const networks = list<NetworkRecord>(raw?.networks);
    const usable = networks.filter((n) => typeof n?.Name === 'string' && typeof n?.Id === 'string');
    if (usable.length !== networks.length) {
      log.warn('networks without a usable name or ID skipped; the file is kept beside the state', {
        skipped: networks.length - usable.length,
      });
      await fs.copyFile(this.file, `${this.file}.unreadable-${Date.now()}`).catch(() => {});
    }
    return { ...raw, networks: usable, endpoints: list(raw?.endpoints), sandboxes: list(raw?.sandboxes) } as NetworkState;
  }

  async save(): Promise<void> {
    await writeJsonAtomic(this.file, this.state);
  }

  // ---------------------------------------------------------------- lookups

  find(ref: string): NetworkRecord | undefined {
    const nets = this.state.networks;
    return (
      nets.find((n) => n.Id === ref) ??
      nets.find((n) => n.Name === ref) ??
      (() => {
        const m = nets.filter((n) => n.Id.startsWith(ref));
        return m.length === 1 ? m[0] : undefined;
      })()
    );
  }

  get(ref: string): NetworkRecord {
    const net = this.find(ref);
    if (!net) throw notFound(`network ${ref} not found`);
    return net;
  }

  byId(id: string): NetworkRecord | undefined {
    return this.state.networks.find((n) => n.Id === id);
  }

  /** The predefined default bridge. */
  defaultBridge(): NetworkRecord | undefined {
    return this.state.networks.find((n) => n.Name === 'bridge' && n.predefined);
  }

  endpointsOf(containerId: string): EndpointState[] {
    return this.state.endpoints.filter((e) => e.containerId === containerId);
  }

  planOf(net: NetworkRecord): SubnetPlan {
    const c = net.IPAM.Config[0];
    if (!c?.Subnet) throw systemError(`network ${net.Name} has no subnet`);
    return planSubnet(c.Subnet, c.Gateway, c.IPRange);
  }

  /** Forgets a container's sandbox and endpoints (the caller removes the host objects). */
  dropSandbox(containerId: string): void {
    this.state.sandboxes = this.state.sandboxes.filter((s) => s.containerId !== containerId);
    this.state.endpoints = this.state.endpoints.filter((e) => e.containerId !== containerId);
  }

  /** Networks referenced by some container's config (running or not), or holding an endpoint. */
  usedNetworkIds(containers: ContainerRecord[]): Set<string> {
    const used = new Set(this.state.endpoints.map((e) => e.networkId));
    for (const c of containers) {
      const refs = [
        c.HostConfig.NetworkMode ?? '',
        ...Object.keys(c.NetworkingConfig?.EndpointsConfig ?? {}),
      ];
      for (const r of refs) {
        const n = this.find(networkRef(r));
        if (n) used.add(n.Id);
      }
    }
    return used;
  }

  // ---------------------------------------------------------------- predefined networks

  blank(name: string, driver: NetworkRecord['Driver']): NetworkRecord {
    return {
      Name: name,
      Id: newId(),
      Created: new Date().toISOString(),
      Scope: 'local',
      Driver: driver,
      EnableIPv4: true,
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: null, Config: [] },
      Internal: false,
      Attachable: false,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Options: {},
      Labels: {},
    };
  }

  private async ensurePredefined(): Promise<void> {
    const have = (name: string) => this.state.networks.some((n) => n.Name === name && n.predefined);
    if (!have('bridge')) {
      const subnet = await this.defaultBridgeSubnet();
      const plan = planSubnet(formatCidr(subnet.subnet), numToIp(subnet.gateway));
      this.state.networks.push({
        ...this.blank('bridge', 'bridge'),
        IPAM: {
          Driver: 'default',
          Options: null,
          Config: [{ Subnet: formatCidr(plan.subnet), Gateway: numToIp(plan.gateway) }],
        },
        Options: {
          'com.docker.network.bridge.default_bridge': 'true',
          'com.docker.network.bridge.enable_icc': 'true',
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
          'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
          [BRIDGE_NAME_OPTION]: this.config.bridge,
          [MTU_OPTION]: '1500',
        },
        ifname: this.config.bridge,
        predefined: true,
      });
    } else {
      // --bridge/--bip may have changed since the record was written.
      const br = this.defaultBridge()!;
      if (this.config.bip) {
        const bip = parseCidr(this.config.bip);
        br.IPAM.Config = [{ Subnet: formatCidr(bip), Gateway: numToIp(bip.addr) }];
      }
      br.ifname = this.config.bridge;
      br.Options[BRIDGE_NAME_OPTION] = this.config.bridge;
    }
    if (!have('host')) this.state.networks.push({ ...this.blank('host', 'host'), predefined: true });
    if (!have('none')) this.state.networks.push({ ...this.blank('none', 'null'), predefined: true });
    this.pools = this.config.defaultAddressPools.length
      ? this.config.defaultAddressPools
      : this.config.instance
        ? [{ base: formatCidr(instanceBlock(this.config.instance, this.blockAttempt())), size: 24 }]
        : DEFAULT_POOLS;
  }

  private blockAttempt(): number {
    const sub = this.defaultBridge()?.IPAM.Config[0]?.Subnet;
    if (!sub) return 0;
    const s = parseCidr(sub);
    for (let a = 0; a < 16; a++) if (overlaps(instanceBlock(this.config.instance, a), s)) return a;
    return 0;
  }

  private async defaultBridgeSubnet(): Promise<{ subnet: Cidr; gateway: number }> {
    if (this.config.bip) {
      const bip = parseCidr(this.config.bip);
      return {
        subnet: { base: bip.base, prefix: bip.prefix },
        gateway: bip.addr === bip.base ? bip.base + 1 : bip.addr,
      };
    }
    const routes = (await hostRoutes()).filter((r) => r.dev !== this.config.bridge).map((r) => r.cidr);
    if (!this.config.instance) {
      const docker = parseCidr('172.17.0.0/16');
      if (!routes.some((r) => overlaps(r, docker))) return { subnet: docker, gateway: docker.base + 1 };
      const s = carveSubnet(DEFAULT_POOLS, routes);
      if (!s) throw systemError('no free subnet for the default bridge: use --bip');
      return { subnet: s, gateway: s.base + 1 };
    }
    for (let a = 0; a < 16; a++) {
      const block = instanceBlock(this.config.instance, a);
      const first = { base: block.base, prefix: 24 };
      if (!routes.some((r) => overlaps(r, block))) return { subnet: first, gateway: first.base + 1 };
    }
    throw systemError('no free subnet for the default bridge: use --bip');
  }
}

/** `default` and an empty mode mean the default bridge. */
export function networkRef(mode: string | undefined): string {
  return !mode || mode === 'default' ? 'bridge' : mode;
}
