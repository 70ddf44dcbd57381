/**
 * The network service: networks and their records, IPAM leases, endpoints in each running
 * container's network namespace, published ports, the firewall table and the embedded DNS.
 * State (networks, endpoints, sandboxes) lives in one JSON file written atomically, so that it
 * survives a daemon restart; host objects outlive the daemon (live restore) and are reconciled
 * with that state at start-up.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Filters } from '../model/filters.js';
import type { ContainerDirectory } from '../model/container-directory.js';
import type { ContainerRecord, EndpointSettings } from '../model/container.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import type { EventBus } from '../model/events.js';
import { conflict, forbidden, invalid, isKind, notFound, systemError } from '../util/errors.js';
import { readJsonOr, writeJsonAtomic } from '../util/fsx.js';
import { newId, shortId } from '../util/ids.js';
import { log } from '../util/log.js';
import { DnsServer } from './dns.js';
import {
  BRIDGE_NAME_OPTION,
  BridgeDriver,
  MacvlanDriver,
  MTU_OPTION,
  type NetworkDriver,
} from './drivers.js';
import { closeNftShell, Firewall, type FirewallNet } from './firewall.js';
import {
  closeIpShell,
  hostResolvConf,
  hostRoutes,
  ipBatch,
  listLinks,
  listNetns,
  netnsPath,
  setIpScratchDir,
  setSysctl,
} from './host.js';
import type { NetworkAttachment, NetworkCreateRequest, NetworkService, NetworkView } from './index.js';
import {
  allocateAddress,
  carveSubnet,
  checkFixedAddress,
  type Cidr,
  formatCidr,
  ipToNum,
  isIPv4,
  macFor,
  numToIp,
  overlaps,
  parseCidr,
  planSubnet,
  type SubnetPlan,
} from './ipam.js';
import { type HostNames, hostNames } from './names.js';
import { allocatePorts, checkPortRequests, portRequests, portsView } from './ports.js';
import type { EndpointState, NetworkRecord, NetworkState, SandboxState } from './types.js';

export interface NetworkServiceOptions {
  config: DaemonConfig;
  events: EventBus;
  containers: ContainerDirectory;
}

/** Optional persistence hook of the container directory (connect/disconnect change a record). */
interface SavingDirectory extends ContainerDirectory {
  save?(record: ContainerRecord): Promise<void>;
}

const DEFAULT_POOLS = [
  ...Array.from({ length: 14 }, (_, i) => ({ base: `172.${18 + i}.0.0/16`, size: 16 })),
  { base: '192.168.0.0/16', size: 20 },
];

function now(): string {
  return new Date().toISOString();
}

/** The instance's own /20 in 10.0.0.0/8 (test daemons): its default bridge and its pool. */
function instanceBlock(instance: string, attempt: number): Cidr {
  const idx = ((parseInt(instance, 16) + attempt * 7919) % 3840) + 256;
  return { base: (ipToNum('10.0.0.0') + idx * 4096) >>> 0, prefix: 20 };
}

interface Spare {
  networkId: string;
  netns: string;
  hostIf: string;
  ip: string;
  mac: string;
}

class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}

export class BerthNetworks implements NetworkService {
  private state: NetworkState = { networks: [], endpoints: [], sandboxes: [] };
  private readonly file: string;
  private readonly names: HostNames;
  private readonly firewall: Firewall;
  private readonly drivers: Record<string, NetworkDriver> = {
    bridge: new BridgeDriver(),
    macvlan: new MacvlanDriver(),
  };
  private readonly dns = new Map<string, DnsServer>();
  private readonly mutex = new Mutex();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  /**
   * One ready-made sandbox per bridge network that has been used: a namespace with its veth on the
   * bridge, an address, the route. A start takes it (no `ip` command on its path) and another is
   * made in the background. Spares are not in the state file: they are removed at close and swept
   * at open (`<netns prefix>s…`).
   */
  private readonly spares = new Map<string, Spare>();
  private pools: { base: string; size: number }[] = [];

  constructor(
    private readonly config: DaemonConfig,
    private readonly events: EventBus,
    private readonly containers: SavingDirectory,
  ) {
    this.file = path.join(config.dataRoot, 'network', 'state.json');
    this.names = hostNames(config.instance);
    this.firewall = new Firewall(this.names.table, this.names.ruleComment, config.iptables);
  }

  // ---------------------------------------------------------------- start-up and state

  async open(): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    await setIpScratchDir(path.join(this.config.execRoot, 'network'));
    this.state = await readJsonOr<NetworkState>(this.file, { networks: [], endpoints: [], sandboxes: [] });
    if (this.config.ipForward) await setSysctl('net.ipv4.ip_forward', '1');
    await this.ensurePredefined();
    for (const net of this.state.networks) {
      const driver = this.drivers[net.Driver];
      if (!driver) continue;
      try {
        await driver.up(net, this.planOf(net));
      } catch (err) {
        log.warn('cannot bring network up', { network: net.Name, err });
      }
    }
    // Sandboxes whose namespace is gone (host reboot): nothing to keep.
    const present = new Set(await listNetns());
    const leftSpares = [...present].filter((n) => n.startsWith(`${this.names.netnsPrefix}s`));
    await ipBatch(
      leftSpares.map((n) => `netns del ${n}`),
      undefined,
      true,
    ).catch(() => {});
    for (const sb of [...this.state.sandboxes]) if (!present.has(sb.netns)) this.dropSandbox(sb.containerId);
    // Ports on our bridges that no endpoint owns (spares of a crashed run, namespaces still being
    // freed): off the bridge and deleted, so that their addresses can be leased again safely.
    const bridges = new Set(this.state.networks.filter((n) => n.Driver === 'bridge').map((n) => n.ifname));
    const owned = new Set(this.state.endpoints.map((e) => e.hostIf));
    const vethPrefix = this.config.instance ? `vb${this.config.instance}` : 'vb-';
    const strays = (await listLinks().catch(() => [])).filter(
      (l) => l.master && bridges.has(l.master) && l.ifname.startsWith(vethPrefix) && !owned.has(l.ifname),
    );
    await ipBatch(
      strays.map((l) => `link del dev ${l.ifname}`),
      undefined,
      true,
    ).catch(() => {});
    await this.save();
    await this.applyFirewall();
    for (const net of this.state.networks) await this.startDns(net);
  }

  private async save(): Promise<void> {
    await writeJsonAtomic(this.file, this.state);
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
      const br = this.state.networks.find((n) => n.Name === 'bridge' && n.predefined)!;
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
    const br = this.state.networks.find((n) => n.Name === 'bridge' && n.predefined);
    const sub = br?.IPAM.Config[0]?.Subnet;
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

  private blank(name: string, driver: NetworkRecord['Driver']): NetworkRecord {
    return {
      Name: name,
      Id: newId(),
      Created: now(),
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

  private planOf(net: NetworkRecord): SubnetPlan {
    const c = net.IPAM.Config[0];
    if (!c?.Subnet) throw systemError(`network ${net.Name} has no subnet`);
    return planSubnet(c.Subnet, c.Gateway, c.IPRange);
  }

  private isRouted(net: NetworkRecord): boolean {
    return this.drivers[net.Driver]?.routed === true;
  }

  private async startDns(net: NetworkRecord): Promise<void> {
    if (!this.isRouted(net) || this.dns.has(net.Id)) return;
    const gw = numToIp(this.planOf(net).gateway);
    const server = new DnsServer(gw, (name, client) => this.resolve(net.Id, name, client));
    try {
      await server.start();
      this.dns.set(net.Id, server);
    } catch (err) {
      log.warn('embedded DNS cannot listen', { network: net.Name, address: gw, err });
    }
  }

  private async stopDns(id: string): Promise<void> {
    const s = this.dns.get(id);
    this.dns.delete(id);
    if (s) await s.close();
  }

  private async applyFirewall(): Promise<void> {
    const nets: FirewallNet[] = this.state.networks
      .filter((n) => n.Driver === 'bridge' && n.ifname)
      .map((n) => ({
        ifname: n.ifname!,
        subnet: formatCidr(this.planOf(n).subnet),
        gateway: numToIp(this.planOf(n).gateway),
        internal: n.Internal,
        masquerade: n.Options['com.docker.network.bridge.enable_ip_masquerade'] !== 'false',
      }));
    const ports = this.state.sandboxes.flatMap((s) => s.ports);
    await this.firewall.apply(nets, ports);
  }

  // ---------------------------------------------------------------- lookups

  private find(ref: string): NetworkRecord | undefined {
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

  private get(ref: string): NetworkRecord {
    const net = this.find(ref);
    if (!net) throw notFound(`network ${ref} not found`);
    return net;
  }

  private networkRef(mode: string | undefined): string {
    return !mode || mode === 'default' ? 'bridge' : mode;
  }

  /** The networks a container asks for, primary first, with their endpoint settings. */
  private wanted(record: ContainerRecord): { net: NetworkRecord; cfg: EndpointSettings }[] {
    const primaryRef = this.networkRef(record.HostConfig.NetworkMode);
    const eps = record.NetworkingConfig?.EndpointsConfig ?? {};
    const out: { net: NetworkRecord; cfg: EndpointSettings }[] = [];
    const primary = this.get(primaryRef);
    const cfgFor = (net: NetworkRecord, key?: string) =>
      (key !== undefined ? eps[key] : undefined) ??
      eps[net.Name] ??
      eps[net.Id] ??
      (net.Name === 'bridge' ? eps.default : undefined) ??
      {};
    out.push({ net: primary, cfg: cfgFor(primary, primaryRef) });
    for (const [key, cfg] of Object.entries(eps)) {
      if (key === 'default') continue;
      const net = this.get(key);
      if (out.some((o) => o.net.Id === net.Id)) continue;
      out.push({ net, cfg: cfg ?? {} });
    }
    return out;
  }

  private containerName(id: string): string {
    try {
      return this.containers.get(id).Name.replace(/^\//, '');
    } catch {
      return shortId(id);
    }
  }

  /** The embedded DNS's view of a network: names of the running containers attached to it. */
  private resolve(
    networkId: string,
    name: string,
    client: string,
  ): { addresses?: string[]; ptr?: string; upstreams: string[] } {
    const eps = this.state.endpoints.filter((e) => e.networkId === networkId);
    // As Docker's resolver: the names of every user-defined network the asking container is on,
    // the network the query arrived on first.
    const asking = eps.find((e) => e.ip === client)?.containerId;
    const netIds = [networkId];
    if (asking) {
      for (const e of this.state.endpoints)
        if (e.containerId === asking && !netIds.includes(e.networkId)) netIds.push(e.networkId);
    }
    const rev = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa$/.exec(name);
    if (rev) {
      const ip = [rev[4], rev[3], rev[2], rev[1]].join('.');
      for (const id of netIds) {
        const net = this.state.networks.find((n) => n.Id === id);
        const ep = this.state.endpoints.find((e) => e.networkId === id && e.ip === ip);
        if (net && !net.predefined && ep)
          return { ptr: `${this.containerName(ep.containerId)}.${net.Name}`, upstreams: [] };
      }
    }
    let addresses: string[] | undefined;
    for (const id of netIds) {
      const net = this.state.networks.find((n) => n.Id === id);
      if (!net || net.predefined) continue;
      // `name` or `name.<network>` (Docker answers both).
      const suffix = `.${net.Name.toLowerCase()}`;
      const bare = name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
      const hit = this.state.endpoints.filter(
        (e) =>
          e.networkId === id &&
          [name, bare].some(
            (n) =>
              e.dnsNames.some((d) => d.toLowerCase() === n) ||
              this.containerName(e.containerId).toLowerCase() === n,
          ),
      );
      if (hit.length) {
        addresses = hit.map((e) => e.ip);
        break;
      }
    }
    let upstreams: string[] = [];
    if (this.config.dnsForward && !addresses) {
      const ep = eps.find((e) => e.ip === client);
      let own: string[] = [];
      if (ep) {
        try {
          own = this.containers.get(ep.containerId).HostConfig.Dns ?? [];
        } catch {}
      }
      upstreams = own.length ? own : this.config.dns.length ? this.config.dns : this.hostNameservers;
    }
    return { addresses, upstreams };
  }

  private hostNameservers: string[] = [];

  // ---------------------------------------------------------------- container life cycle

  async validate(record: ContainerRecord): Promise<void> {
    const mode = record.HostConfig.NetworkMode ?? 'default';
    if (mode.startsWith('container:')) {
      const target = this.containers.get(mode.slice('container:'.length));
      if (target.Id === record.Id) throw invalid('cannot join own network namespace');
      if (Object.keys(record.HostConfig.PortBindings ?? {}).length || record.HostConfig.PublishAllPorts)
        throw invalid('conflicting options: port publishing and the container type network mode');
      return;
    }
    const wanted = this.wanted(record);
    const primary = wanted[0].net;
    if (primary.Driver === 'host' || primary.Driver === 'null') {
      if (wanted.length > 1)
        throw invalid(
          `container cannot be connected to multiple networks with one of the networks in ${primary.Name} mode`,
        );
      return;
    }
    for (const { net, cfg } of wanted) {
      const ip = cfg.IPAMConfig?.IPv4Address;
      if (ip) {
        if (net.predefined)
          throw invalid('user specified IP address is supported on user defined networks only');
        if (!isIPv4(ip)) throw invalid(`invalid IPv4 address: ${ip}`);
        const plan = this.planOf(net);
        checkFixedAddress(plan, ip, new Set());
      }
      if (net.predefined && cfg.Aliases?.length)
        throw invalid('network-scoped alias is supported only for containers in user defined networks');
    }
    checkPortRequests(record);
  }

  async attach(record: ContainerRecord): Promise<NetworkAttachment> {
    const t0 = performance.now();
    const a = await this.mutex.run(() => this.attachLocked(record));
    log.debug('network attach', { id: shortId(record.Id), ms: Math.round(performance.now() - t0) });
    return a;
  }

  private async attachLocked(record: ContainerRecord): Promise<NetworkAttachment> {
    const hc = record.HostConfig;
    const mode = hc.NetworkMode ?? 'default';
    if (this.state.sandboxes.some((s) => s.containerId === record.Id)) await this.teardown(record.Id);
    if (this.hostNameservers.length === 0) this.hostNameservers = (await hostResolvConf()).nameservers;
    const base = {
      Bridge: '',
      SandboxID: '',
      SandboxKey: '',
      HairpinMode: false,
      Ports: {},
      Networks: {},
    } as ContainerRecord['NetworkSettings'];
    if (mode.startsWith('container:')) {
      const target = this.containers.get(mode.slice('container:'.length));
      if (!target.State.Running)
        throw conflict(`cannot join network namespace of a non running container: ${target.Id}`);
      const tsb = this.state.sandboxes.find((s) => s.containerId === target.Id);
      const hostNet = target.HostConfig.NetworkMode === 'host';
      return {
        hostNetwork: hostNet,
        netnsPath: hostNet ? undefined : tsb ? netnsPath(tsb.netns) : `/proc/${target.State.Pid}/ns/net`,
        hosts: this.extraHosts(record),
        addresses: [],
        resolvConf: await this.resolvConf(record, undefined),
        settings: { ...base, SandboxKey: tsb ? netnsPath(tsb.netns) : '' },
      };
    }
    const wanted = this.wanted(record);
    const primary = wanted[0].net;
    if (primary.Driver === 'host') {
      return {
        hostNetwork: true,
        hosts: this.extraHosts(record),
        addresses: [],
        resolvConf: await this.resolvConf(record, primary),
        settings: { ...base, Networks: { host: this.endpointView(primary, undefined, wanted[0].cfg) } },
      };
    }
    if (primary.Driver === 'null') {
      return {
        hostNetwork: false,
        hosts: this.extraHosts(record),
        addresses: [],
        resolvConf: await this.resolvConf(record, primary),
        settings: { ...base, Networks: { none: this.endpointView(primary, undefined, wanted[0].cfg) } },
      };
    }

    // A fixed address a spare holds: the spare goes.
    for (const { net, cfg } of wanted) {
      const sp = this.spares.get(net.Id);
      if (sp && cfg.IPAMConfig?.IPv4Address === sp.ip) await this.dropSpare(net.Id);
    }
    const cfg0 = wanted[0].cfg;
    const spare =
      wanted.length === 1 && !cfg0.IPAMConfig?.IPv4Address && !cfg0.MacAddress
        ? this.spares.get(primary.Id)
        : undefined;
    if (spare) this.spares.delete(primary.Id);
    if (primary.Driver === 'bridge' && !this.closed)
      setImmediate(() => void this.mutex.run(() => this.refill(primary.Id)));
    const sb: SandboxState = {
      containerId: record.Id,
      netns: spare?.netns ?? this.names.netns(record.Id),
      ports: [],
    };
    const made: EndpointState[] = [];
    let nsMade = !!spare;
    try {
      const host: string[] = [`netns add ${sb.netns}`];
      const ns: string[] = ['link set dev lo up'];
      for (const [i, { net, cfg }] of wanted.entries()) {
        const ep = this.newEndpoint(record, net, cfg, `eth${i}`, spare);
        made.push(ep);
        const plan = this.drivers[net.Driver].join(net, ep, sb.netns, i === 0);
        host.push(...plan.host);
        ns.push(...plan.ns);
        this.state.endpoints.push(ep);
      }
      const first = made[0];
      if (this.isRouted(primary) && !primary.Internal) {
        const reqs = portRequests(record);
        if (reqs.length && !this.config.iptables)
          throw invalid(
            'cannot publish ports: berthd runs with --iptables=false (no NAT rules, no userland proxy)',
          );
        sb.ports = await allocatePorts(
          reqs,
          this.state.sandboxes.flatMap((s) => s.ports),
          { ip: first.ip, ifname: primary.ifname! },
        );
      }
      this.state.sandboxes.push(sb);
      nsMade = true;
      if (!spare) {
        await ipBatch(host).catch(async (err: Error) => {
          // Leftovers of a crash (a namespace or veth of this container): remove them, retry once.
          if (!/File exists/.test(err.message)) throw err;
          await this.removeHostObjects(sb.netns, made);
          await ipBatch(host);
        });
      }
      // The namespace side, the state file and the port rules do not depend on each other.
      const jobs = [spare ? Promise.resolve() : ipBatch(ns, sb.netns), this.save()];
      if (sb.ports.length) jobs.push(this.applyFirewall());
      const results = await Promise.allSettled(jobs);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    } catch (err) {
      this.state.endpoints = this.state.endpoints.filter((e) => !made.includes(e));
      this.state.sandboxes = this.state.sandboxes.filter((s) => s !== sb);
      if (nsMade) await this.removeHostObjects(sb.netns, made);
      if (sb.ports.length) await this.applyFirewall().catch(() => {});
      await this.save().catch(() => {});
      throw err;
    }
    for (const ep of made) {
      const net = this.state.networks.find((n) => n.Id === ep.networkId)!;
      this.events.publish('network', 'connect', net.Id, {
        container: record.Id,
        name: net.Name,
        type: net.Driver,
      });
    }
    return {
      hostNetwork: false,
      netnsPath: netnsPath(sb.netns),
      hosts: [...this.extraHosts(record), ...this.linkHosts(record)],
      addresses: made.map((e) => e.ip),
      resolvConf: await this.resolvConf(record, primary),
      settings: this.settingsFor(record, sb),
    };
  }

  private leasedOn(networkId: string): Set<number> {
    const leased = new Set(
      this.state.endpoints.filter((e) => e.networkId === networkId).map((e) => ipToNum(e.ip)),
    );
    for (const sp of this.spares.values()) if (sp.networkId === networkId) leased.add(ipToNum(sp.ip));
    return leased;
  }

  private newEndpoint(
    record: ContainerRecord,
    net: NetworkRecord,
    cfg: EndpointSettings,
    ifName: string,
    spare?: Spare,
  ): EndpointState {
    const plan = this.planOf(net);
    const leased = this.leasedOn(net.Id);
    const fixed = cfg.IPAMConfig?.IPv4Address;
    const ip = spare
      ? ipToNum(spare.ip)
      : fixed
        ? checkFixedAddress(plan, fixed, leased)
        : allocateAddress(plan, leased);
    if (ip === undefined)
      throw systemError(
        `no available IPv4 addresses on this network's address pools: ${net.Name} (${net.Id})`,
      );
    const name = record.Name.replace(/^\//, '');
    const userNet = !net.predefined;
    return {
      id: newId(),
      containerId: record.Id,
      networkId: net.Id,
      ifName,
      hostIf: spare ? spare.hostIf : net.Driver === 'bridge' ? this.names.veth(record.Id, net.Id) : undefined,
      ip: numToIp(ip),
      prefix: plan.subnet.prefix,
      gateway: net.Internal && net.Driver === 'bridge' ? '' : numToIp(plan.gateway),
      mac: spare ? spare.mac : cfg.MacAddress || macFor(ip),
      aliases: userNet ? [...(cfg.Aliases ?? [])] : [],
      dnsNames: userNet ? [name, ...(cfg.Aliases ?? []), shortId(record.Id)] : [],
    };
  }

  /**
   * Deletes the namespace and, with `links`, the endpoints' host links first. Without it the
   * kernel removes the veths with the namespace, asynchronously: deleting a veth explicitly waits
   * for an RCU grace period (10–20 ms), which a container's exit need not wait for.
   */
  private async removeHostObjects(netns: string, eps: EndpointState[], links = true): Promise<void> {
    const host: string[] = [];
    for (const ep of eps) {
      const net = this.state.networks.find((n) => n.Id === ep.networkId);
      const d = net && this.drivers[net.Driver];
      if (d && links) host.push(...d.leave(net, ep, netns).host);
      // Until the kernel frees the namespace, its veth must not answer for an address that
      // may be leased again at once: take it off the bridge now (cheap, unlike deletion).
      else if (ep.hostIf) host.push(`link set dev ${ep.hostIf} down nomaster`);
    }
    host.push(`netns del ${netns}`);
    await ipBatch(host, undefined, true).catch(() => {});
  }

  private dropSandbox(containerId: string): void {
    this.state.sandboxes = this.state.sandboxes.filter((s) => s.containerId !== containerId);
    this.state.endpoints = this.state.endpoints.filter((e) => e.containerId !== containerId);
  }

  /** Removes a container's namespace, links, leases and port rules. */
  private async teardown(containerId: string): Promise<void> {
    const sb = this.state.sandboxes.find((s) => s.containerId === containerId);
    const eps = this.state.endpoints.filter((e) => e.containerId === containerId);
    if (!sb && eps.length === 0) return;
    this.dropSandbox(containerId);
    const jobs: Promise<void>[] = [this.save()];
    if (sb) jobs.push(this.removeHostObjects(sb.netns, eps, false));
    if (sb?.ports.length) jobs.push(this.applyFirewall());
    await Promise.all(jobs);
    // A process still holding the namespace keeps its veths alive: sweep them a little later.
    const hostIfs = eps.map((e) => e.hostIf).filter((x): x is string => !!x);
    if (hostIfs.length && !this.closed) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.sweepLinks(hostIfs);
      }, 3000);
      timer.unref();
      this.timers.add(timer);
    }
    for (const ep of eps) {
      const net = this.state.networks.find((n) => n.Id === ep.networkId);
      if (net)
        this.events.publish('network', 'disconnect', net.Id, {
          container: containerId,
          name: net.Name,
          type: net.Driver,
        });
    }
  }

  /** Makes the spare sandbox of a bridge network (run under the mutex, off any start's path). */
  private async refill(networkId: string): Promise<void> {
    if (this.closed || this.spares.has(networkId)) return;
    const net = this.state.networks.find((n) => n.Id === networkId);
    if (net?.Driver !== 'bridge') return;
    const plan = this.planOf(net);
    const ipNum = allocateAddress(plan, this.leasedOn(net.Id));
    if (ipNum === undefined) return;
    const tag = randomBytes(6).toString('hex').slice(0, 11);
    const sp: Spare = {
      networkId,
      netns: `${this.names.netnsPrefix}s${tag}`,
      hostIf: this.names.veth(`spare-${tag}`, networkId),
      ip: numToIp(ipNum),
      mac: macFor(ipNum),
    };
    const ep = {
      ifName: 'eth0',
      hostIf: sp.hostIf,
      ip: sp.ip,
      prefix: plan.subnet.prefix,
      gateway: net.Internal ? '' : numToIp(plan.gateway),
      mac: sp.mac,
    } as EndpointState;
    const join = this.drivers.bridge.join(net, ep, sp.netns, true);
    this.spares.set(networkId, sp); // its address is taken from now on
    try {
      await ipBatch([`netns add ${sp.netns}`, ...join.host]);
      await ipBatch(['link set dev lo up', ...join.ns], sp.netns);
    } catch (err) {
      this.spares.delete(networkId);
      await ipBatch([`link del dev ${sp.hostIf}`, `netns del ${sp.netns}`], undefined, true).catch(() => {});
      log.debug('cannot make a spare sandbox', { network: net.Name, err });
    }
  }

  private async dropSpare(networkId: string): Promise<void> {
    const sp = this.spares.get(networkId);
    if (!sp) return;
    this.spares.delete(networkId);
    await ipBatch(
      [`link set dev ${sp.hostIf} down nomaster`, `netns del ${sp.netns}`],
      undefined,
      true,
    ).catch(() => {});
  }

  private sweepLinks(names: string[]): Promise<void> {
    return this.mutex.run(async () => {
      if (this.closed) return;
      const stale = names.filter((n) => !this.state.endpoints.some((e) => e.hostIf === n));
      const present = new Set((await listLinks().catch(() => [])).map((l) => l.ifname));
      const del = stale.filter((n) => present.has(n)).map((n) => `link del dev ${n}`);
      await ipBatch(del, undefined, true).catch(() => {});
    });
  }

  async detach(record: ContainerRecord): Promise<void> {
    const t0 = performance.now();
    await this.mutex.run(() => this.teardown(record.Id));
    clearSettings(record);
    log.debug('network detach', { id: shortId(record.Id), ms: Math.round(performance.now() - t0) });
  }

  async restore(running: ContainerRecord[]): Promise<void> {
    await this.mutex.run(async () => {
      const alive = new Set(running.map((r) => r.Id));
      for (const sb of [...this.state.sandboxes]) {
        if (!alive.has(sb.containerId)) await this.teardown(sb.containerId);
      }
      await this.applyFirewall();
    });
  }

  async close(): Promise<void> {
    await this.mutex.run(async () => {
      this.closed = true;
      for (const id of [...this.spares.keys()]) await this.dropSpare(id);
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      for (const id of [...this.dns.keys()]) await this.stopDns(id);
      closeIpShell();
      closeNftShell();
    });
  }

  // ---------------------------------------------------------------- views

  private endpointView(
    net: NetworkRecord,
    ep: EndpointState | undefined,
    cfg: EndpointSettings = {},
  ): EndpointSettings {
    return {
      IPAMConfig: cfg.IPAMConfig ?? null,
      Links: cfg.Links ?? null,
      Aliases: ep ? (ep.aliases.length ? ep.aliases : null) : (cfg.Aliases ?? null),
      MacAddress: ep?.mac ?? '',
      DriverOpts: cfg.DriverOpts ?? null,
      GwPriority: 0,
      NetworkID: net.Id,
      EndpointID: ep?.id ?? '',
      Gateway: ep?.gateway ?? '',
      IPAddress: ep?.ip ?? '',
      IPPrefixLen: ep?.prefix ?? 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DNSNames: ep?.dnsNames.length ? ep.dnsNames : null,
    } as EndpointSettings;
  }

  private settingsFor(record: ContainerRecord, sb: SandboxState): ContainerRecord['NetworkSettings'] {
    const eps = this.state.endpoints
      .filter((e) => e.containerId === record.Id)
      .sort((a, b) => a.ifName.localeCompare(b.ifName, 'en', { numeric: true }));
    const cfgs = record.NetworkingConfig?.EndpointsConfig ?? {};
    const networks: Record<string, EndpointSettings> = {};
    for (const ep of eps) {
      const net = this.state.networks.find((n) => n.Id === ep.networkId)!;
      const cfg = cfgs[net.Name] ?? cfgs[net.Id] ?? (net.Name === 'bridge' ? cfgs.default : undefined) ?? {};
      networks[net.Name] = this.endpointView(net, ep, cfg);
    }
    const bridgeEp = eps.find(
      (e) => this.state.networks.find((n) => n.Id === e.networkId)?.Name === 'bridge',
    );
    return {
      Bridge: '',
      SandboxID: createHash('sha256').update(sb.netns).digest('hex'),
      SandboxKey: netnsPath(sb.netns),
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: portsView(record, sb.ports),
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: bridgeEp?.id ?? '',
      Gateway: bridgeEp?.gateway ?? '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: bridgeEp?.ip ?? '',
      IPPrefixLen: bridgeEp?.prefix ?? 0,
      IPv6Gateway: '',
      MacAddress: bridgeEp?.mac ?? '',
      Networks: networks,
    };
  }

  private extraHosts(record: ContainerRecord): string[] {
    const out: string[] = [];
    for (const h of record.HostConfig.ExtraHosts ?? []) {
      const i = h.search(/[:=]/);
      if (i <= 0) continue;
      const name = h.slice(0, i);
      let ip = h.slice(i + 1);
      if (ip === 'host-gateway') {
        const br = this.state.networks.find((n) => n.Name === 'bridge' && n.predefined);
        ip = br ? numToIp(this.planOf(br).gateway) : '127.0.0.1';
      }
      out.push(`${ip}\t${name}`);
    }
    return out;
  }

  /** `--link name:alias` on the default bridge: the linked container's address in /etc/hosts. */
  private linkHosts(record: ContainerRecord): string[] {
    const out: string[] = [];
    for (const link of record.HostConfig.Links ?? []) {
      const [target, aliasPath] = link.split(':');
      try {
        const t = this.containers.get(target);
        const ep = this.state.endpoints.find((e) => e.containerId === t.Id);
        if (!ep) continue;
        const alias = (aliasPath ?? target).split('/').pop()!;
        const tname = t.Name.replace(/^\//, '');
        out.push(`${ep.ip}\t${[...new Set([alias, tname, shortId(t.Id)])].join(' ')}`);
      } catch {}
    }
    return out;
  }

  private async resolvConf(record: ContainerRecord, primary: NetworkRecord | undefined): Promise<string> {
    const hc = record.HostConfig;
    const host = await hostResolvConf();
    const search = hc.DnsSearch?.length ? hc.DnsSearch : host.search;
    const options = hc.DnsOptions?.length ? hc.DnsOptions : host.options;
    let servers: string[];
    const embedded = primary && !primary.predefined && this.isRouted(primary) && this.dns.has(primary.Id);
    if (embedded) {
      servers = [numToIp(this.planOf(primary).gateway)];
    } else if (hc.Dns?.length) {
      servers = hc.Dns;
    } else if (this.config.dns.length) {
      servers = this.config.dns;
    } else if (primary?.Driver === 'host') {
      servers = host.nameservers;
    } else if (!this.config.dnsForward && primary && this.isRouted(primary) && this.dns.has(primary.Id)) {
      // No forwarding to upstreams: the default bridge's resolver (which refuses) is all there is.
      servers = [numToIp(this.planOf(primary).gateway)];
    } else {
      servers = host.nameservers.filter((s) => !s.startsWith('127.') && s !== '::1');
      if (servers.length === 0) servers = ['8.8.8.8', '8.8.4.4'];
    }
    const lines = servers.map((s) => `nameserver ${s}`);
    if (search.length) lines.push(`search ${search.join(' ')}`);
    if (options.length) lines.push(`options ${options.join(' ')}`);
    return lines.join('\n') + '\n';
  }

  private view(net: NetworkRecord): NetworkView {
    const { ifname: _i, mtu: _m, predefined: _p, ...rest } = net;
    const containers: NetworkView['Containers'] = {};
    for (const ep of this.state.endpoints.filter((e) => e.networkId === net.Id)) {
      containers[ep.containerId] = {
        Name: this.containerName(ep.containerId),
        EndpointID: ep.id,
        MacAddress: ep.mac,
        IPv4Address: `${ep.ip}/${ep.prefix}`,
        IPv6Address: '',
      };
    }
    return { ...rest, Containers: containers };
  }

  // ---------------------------------------------------------------- API

  async list(filters: Filters): Promise<NetworkView[]> {
    for (const k of filters.keys())
      if (!['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling'].includes(k))
        throw invalid(`invalid filter '${k}'`);
    const used = this.usedNetworkIds();
    return this.state.networks.filter((n) => this.matches(n, filters, used)).map((n) => this.view(n));
  }

  private matches(n: NetworkRecord, f: Filters, used: Set<string>): boolean {
    const any = (key: string, pred: (v: string) => boolean) => !f.has(key) || f.get(key)!.some(pred);
    return (
      any('driver', (v) => n.Driver === v) &&
      any('id', (v) => n.Id.startsWith(v)) &&
      any('name', (v) => n.Name.includes(v)) &&
      any('scope', (v) => v === 'local') &&
      any('type', (v) => (v === 'builtin' ? !!n.predefined : v === 'custom' ? !n.predefined : false)) &&
      any('dangling', (v) =>
        ['true', '1'].includes(v) ? !n.predefined && !used.has(n.Id) : n.predefined || used.has(n.Id),
      ) &&
      (!f.has('label') ||
        f.get('label')!.every((l) => {
          const [k, v] = l.split('=', 2);
          return k in n.Labels && (v === undefined || n.Labels[k] === v);
        }))
    );
  }

  /** Networks referenced by some container's config (running or not). */
  private usedNetworkIds(): Set<string> {
    const used = new Set(this.state.endpoints.map((e) => e.networkId));
    let all: ContainerRecord[] = [];
    try {
      all = this.containers.list();
    } catch {}
    for (const c of all) {
      const refs = [
        c.HostConfig.NetworkMode ?? '',
        ...Object.keys(c.NetworkingConfig?.EndpointsConfig ?? {}),
      ];
      for (const r of refs) {
        const n = this.find(this.networkRef(r));
        if (n) used.add(n.Id);
      }
    }
    return used;
  }

  async inspect(ref: string): Promise<NetworkView> {
    return this.view(this.get(ref));
  }

  async create(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    return this.mutex.run(async () => {
      const name = req.Name;
      if (!name || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name))
        throw invalid(`invalid network name: "${name ?? ''}"`);
      if (this.state.networks.some((n) => n.Name === name))
        throw conflict(`network with name ${name} already exists`);
      const driverName = req.Driver || 'bridge';
      if (driverName === 'host' || driverName === 'null')
        throw forbidden(`only one instance of "${driverName}" network is allowed`);
      if (driverName === 'overlay')
        throw forbidden('overlay networks are not supported by this daemon (no multi-host control plane)');
      const driver = this.drivers[driverName];
      if (!driver) throw notFound(`plugin "${driverName}" not found`);
      if (req.EnableIPv6) throw invalid('IPv6 networks are not supported by this daemon');
      if (req.IPAM?.Driver && req.IPAM.Driver !== 'default')
        throw notFound(`plugin "${req.IPAM.Driver}" not found`);
      const configs = req.IPAM?.Config ?? [];
      if (configs.length > 1) throw invalid('only one IPv4 subnet per network is supported');
      const net: NetworkRecord = {
        ...this.blank(name, driver.name),
        Internal: !!req.Internal,
        Attachable: !!req.Attachable,
        Options: { ...(req.Options ?? {}) },
        Labels: { ...(req.Labels ?? {}) },
      };
      // Subnet: given, or carved from the pools around every subnet in use.
      const ours = this.state.networks
        .filter((n) => n.IPAM.Config[0]?.Subnet)
        .map((n) => parseCidr(n.IPAM.Config[0].Subnet!));
      let entry = configs[0] ?? {};
      if (entry.Subnet) {
        const s = parseCidr(entry.Subnet, true);
        if (ours.some((o) => overlaps(o, s)))
          throw forbidden('invalid pool request: Pool overlaps with other one on this address space');
      } else {
        if (entry.Gateway || entry.IPRange) throw invalid('a gateway or IP range needs a subnet (--subnet)');
        const routes = (await hostRoutes()).map((r) => r.cidr);
        const s = carveSubnet(this.pools, [...ours, ...routes]);
        if (!s) throw forbidden('all predefined address pools have been fully subnetted');
        entry = { Subnet: formatCidr(s) };
      }
      const plan = planSubnet(entry.Subnet!, entry.Gateway, entry.IPRange);
      net.IPAM = {
        Driver: 'default',
        Options: req.IPAM?.Options ?? {},
        Config: [
          {
            Subnet: formatCidr(plan.subnet),
            Gateway: numToIp(plan.gateway),
            ...(entry.IPRange ? { IPRange: entry.IPRange } : {}),
          },
        ],
      };
      if (driver.name === 'bridge') {
        const br = net.Options[BRIDGE_NAME_OPTION] || this.names.bridge(net.Id);
        if (this.state.networks.some((n) => n.ifname === br && n.Driver === 'bridge'))
          throw conflict(`bridge name ${br} is already in use`);
        net.ifname = br;
      } else {
        net.ifname = net.Options.parent;
      }
      await driver.validate(net);
      try {
        await driver.up(net, plan);
        this.state.networks.push(net);
        await this.applyFirewall();
        await this.save();
        await this.startDns(net);
      } catch (err) {
        this.state.networks = this.state.networks.filter((n) => n !== net);
        await this.stopDns(net.Id);
        await driver.down(net).catch(() => {});
        await this.applyFirewall().catch(() => {});
        throw err;
      }
      this.events.publish('network', 'create', net.Id, { name: net.Name, type: net.Driver });
      return { Id: net.Id, Warning: '' };
    });
  }

  async remove(ref: string): Promise<void> {
    await this.mutex.run(async () => {
      const net = this.get(ref);
      if (net.predefined) throw forbidden(`${net.Name} is a pre-defined network and cannot be removed`);
      const eps = this.state.endpoints.filter((e) => e.networkId === net.Id);
      if (eps.length)
        throw forbidden(
          `error while removing network: network ${net.Name} has active endpoints (${eps.map((e) => this.containerName(e.containerId)).join(', ')})`,
        );
      await this.removeNetwork(net);
    });
  }

  private async removeNetwork(net: NetworkRecord): Promise<void> {
    await this.dropSpare(net.Id);
    await this.stopDns(net.Id);
    this.state.networks = this.state.networks.filter((n) => n !== net);
    await this.applyFirewall();
    await this.drivers[net.Driver]?.down(net);
    await this.save();
    this.events.publish('network', 'destroy', net.Id, { name: net.Name, type: net.Driver });
  }

  async prune(filters: Filters): Promise<string[]> {
    for (const k of filters.keys())
      if (!['until', 'label', 'label!'].includes(k)) throw invalid(`invalid filter '${k}'`);
    return this.mutex.run(async () => {
      const used = this.usedNetworkIds();
      const removed: string[] = [];
      const until = filters.get('until')?.[0];
      const untilMs = until
        ? /^\d+(\.\d+)?$/.test(until)
          ? Number(until) * 1000
          : Date.parse(until)
        : undefined;
      for (const net of [...this.state.networks]) {
        if (net.predefined || used.has(net.Id)) continue;
        if (untilMs !== undefined && Date.parse(net.Created) >= untilMs) continue;
        const labelOk = (filters.get('label') ?? []).every((l) => {
          const [k, v] = l.split('=', 2);
          return k in net.Labels && (v === undefined || net.Labels[k] === v);
        });
        const notLabelOk = (filters.get('label!') ?? []).every((l) => {
          const [k, v] = l.split('=', 2);
          return !(k in net.Labels && (v === undefined || net.Labels[k] === v));
        });
        if (!labelOk || !notLabelOk) continue;
        await this.removeNetwork(net);
        removed.push(net.Name);
      }
      return removed;
    });
  }

  async connect(
    ref: string,
    containerRef: string,
    config: EndpointSettings | null | undefined,
  ): Promise<void> {
    await this.mutex.run(async () => {
      const net = this.get(ref);
      const record = this.containers.get(containerRef);
      const mode = this.networkRef(record.HostConfig.NetworkMode);
      if (
        net.Driver === 'host' ||
        net.Driver === 'null' ||
        mode === 'host' ||
        mode === 'none' ||
        mode.startsWith('container:')
      )
        throw forbidden(`container cannot be disconnected from host network or connected to host network`);
      if (!record.NetworkingConfig) record.NetworkingConfig = {};
      const cfgs = record.NetworkingConfig.EndpointsConfig ?? {};
      record.NetworkingConfig.EndpointsConfig = cfgs;
      const primary = this.find(mode);
      const already =
        primary?.Id === net.Id ||
        Object.keys(cfgs).some((k) => k !== 'default' && this.find(k)?.Id === net.Id) ||
        this.state.endpoints.some((e) => e.containerId === record.Id && e.networkId === net.Id);
      if (already)
        throw forbidden(
          `endpoint with name ${record.Name.replace(/^\//, '')} already exists in network ${net.Name}`,
        );
      const cfg: EndpointSettings = { ...(config ?? {}) };
      if (cfg.IPAMConfig?.IPv4Address) {
        if (net.predefined)
          throw invalid('user specified IP address is supported on user defined networks only');
        checkFixedAddress(this.planOf(net), cfg.IPAMConfig.IPv4Address, new Set());
      }
      if (net.predefined && cfg.Aliases?.length)
        throw invalid('network-scoped alias is supported only for containers in user defined networks');
      const sb = this.state.sandboxes.find((s) => s.containerId === record.Id);
      if (sb && cfg.IPAMConfig?.IPv4Address && this.spares.get(net.Id)?.ip === cfg.IPAMConfig.IPv4Address)
        await this.dropSpare(net.Id);
      if (sb) {
        const used = this.state.endpoints
          .filter((e) => e.containerId === record.Id)
          .map((e) => Number(e.ifName.slice(3)));
        let i = 0;
        while (used.includes(i)) i++;
        const ep = this.newEndpoint(record, net, cfg, `eth${i}`);
        const plan = this.drivers[net.Driver].join(net, ep, sb.netns, used.length === 0);
        this.state.endpoints.push(ep);
        try {
          await ipBatch(plan.host);
          await ipBatch(plan.ns, sb.netns);
          await this.save();
        } catch (err) {
          this.state.endpoints = this.state.endpoints.filter((e) => e !== ep);
          const leave = this.drivers[net.Driver].leave(net, ep, sb.netns);
          await ipBatch(leave.host, undefined, true).catch(() => {});
          await ipBatch(leave.ns, sb.netns, true).catch(() => {});
          throw err;
        }
        await this.addHostsLine(record, ep);
      }
      cfgs[net.Name] = cfg;
      if (sb) record.NetworkSettings = this.settingsFor(record, sb);
      await this.containers.save?.(record);
      this.events.publish('network', 'connect', net.Id, {
        container: record.Id,
        name: net.Name,
        type: net.Driver,
      });
    });
  }

  async disconnect(ref: string, containerRef: string, force: boolean): Promise<void> {
    await this.mutex.run(async () => {
      const net = this.get(ref);
      let record: ContainerRecord | undefined;
      try {
        record = this.containers.get(containerRef);
      } catch (err) {
        // -f: a container that is gone may still hold an endpoint here.
        if (!force || !isKind(err, 'not-found')) throw err;
        const ep = this.state.endpoints.find(
          (e) =>
            e.networkId === net.Id &&
            (e.containerId.startsWith(containerRef) || this.containerName(e.containerId) === containerRef),
        );
        if (!ep) throw err;
        this.state.endpoints = this.state.endpoints.filter((e) => e !== ep);
        if (ep.hostIf) await ipBatch([`link del dev ${ep.hostIf}`], undefined, true).catch(() => {});
        await this.save();
        return;
      }
      if (net.Driver === 'host' || net.Driver === 'null')
        throw forbidden('container cannot be disconnected from host network or connected to host network');
      const cfgs = record.NetworkingConfig?.EndpointsConfig ?? {};
      const keys = Object.keys(cfgs).filter((k) =>
        k === 'default' ? net.Name === 'bridge' : this.find(k)?.Id === net.Id,
      );
      const primary = this.find(this.networkRef(record.HostConfig.NetworkMode));
      const ep = this.state.endpoints.find((e) => e.containerId === record.Id && e.networkId === net.Id);
      if (!ep && keys.length === 0 && primary?.Id !== net.Id)
        throw forbidden(`container ${record.Id} is not connected to network ${net.Name}`);
      const sb = this.state.sandboxes.find((s) => s.containerId === record.Id);
      if (ep && sb) {
        const d = this.drivers[net.Driver];
        const leave = d.leave(net, ep, sb.netns);
        await ipBatch(leave.ns, sb.netns, true).catch(() => {});
        await ipBatch(leave.host, undefined, true).catch(() => {});
        this.state.endpoints = this.state.endpoints.filter((e) => e !== ep);
        const lost = sb.ports.filter((p) => p.containerIp === ep.ip && p.ifname === net.ifname);
        if (lost.length) {
          sb.ports = sb.ports.filter((p) => !lost.includes(p));
          await this.applyFirewall();
        }
        await this.save();
        await this.removeHostsLine(record, ep);
      }
      for (const k of keys) delete cfgs[k];
      if (primary?.Id === net.Id) record.HostConfig.NetworkMode = 'none';
      if (sb) record.NetworkSettings = this.settingsFor(record, sb);
      else if (record.NetworkSettings?.Networks) delete record.NetworkSettings.Networks[net.Name];
      await this.containers.save?.(record);
      this.events.publish('network', 'disconnect', net.Id, {
        container: record.Id,
        name: net.Name,
        type: net.Driver,
      });
    });
  }

  /** A running container's /etc/hosts gains its address on a network it joined (as Docker does). */
  private async addHostsLine(record: ContainerRecord, ep: EndpointState): Promise<void> {
    if (!record.HostsPath || !existsSync(record.HostsPath)) return;
    const name = record.Config.Hostname || shortId(record.Id);
    const text = await fs.readFile(record.HostsPath, 'utf8');
    await fs.writeFile(record.HostsPath, `${text.replace(/\n?$/, '\n')}${ep.ip}\t${name}\n`);
  }

  private async removeHostsLine(record: ContainerRecord, ep: EndpointState): Promise<void> {
    if (!record.HostsPath || !existsSync(record.HostsPath)) return;
    const text = await fs.readFile(record.HostsPath, 'utf8');
    const kept = text.split('\n').filter((l) => !l.startsWith(`${ep.ip}\t`) && !l.startsWith(`${ep.ip} `));
    await fs.writeFile(record.HostsPath, kept.join('\n'));
  }
}

/** What inspect shows of a container that is not running: its networks, no addresses or ports (as Docker). */
function clearSettings(record: ContainerRecord): void {
  const ns = record.NetworkSettings;
  if (!ns) return;
  ns.Ports = {};
  ns.SandboxID = '';
  ns.SandboxKey = '';
  for (const k of ['EndpointID', 'Gateway', 'IPAddress', 'MacAddress'] as const) if (k in ns) ns[k] = '';
  if ('IPPrefixLen' in ns) ns.IPPrefixLen = 0;
  for (const ep of Object.values(ns.Networks ?? {})) {
    ep.EndpointID = '';
    ep.Gateway = '';
    ep.IPAddress = '';
    ep.IPPrefixLen = 0;
    ep.MacAddress = '';
    ep.DNSNames = null;
  }
}

export async function openNetworkService(opts: NetworkServiceOptions): Promise<NetworkService> {
  const svc = new BerthNetworks(opts.config, opts.events, opts.containers);
  await svc.open();
  return svc;
}
