/**
 * Containers' sandboxes: the network namespace of each running container, its endpoints (an
 * address and a link per network), its published ports, and the spare sandboxes kept ready per
 * bridge network so that a start runs no `ip` command on its path. Callers hold the service's
 * mutex around every method here.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerRecord, EndpointSettings } from '../model/container.js';
import type { ContainerDirectory } from '../model/container-directory.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import type { EventBus } from '../model/events.js';
import { conflict, invalid, systemError } from '../util/errors.js';
import { newId, shortId } from '../util/ids.js';
import { log } from '../util/log.js';
import type { NetworkDriver } from './drivers.js';
import type { EtcFiles } from './etc-files.js';
import { hostResolvConf, ipBatch, listLinks, netnsPath, redirectResolver } from './host.js';
import type { NetworkAttachment } from './index.js';
import { allocateAddress, checkFixedAddress, ipToNum, macFor, numToIp } from './ipam.js';
import type { HostNames } from './names.js';
import { allocatePorts, portRequests } from './ports.js';
import type { EmbeddedDns } from './resolver.js';
import { type NetworkStore, networkRef } from './store.js';
import type { EndpointState, NetworkRecord, SandboxState } from './types.js';
import { emptySettings, endpointView, settingsFor } from './views.js';

interface Spare {
  networkId: string;
  netns: string;
  hostIf: string;
  ip: string;
  mac: string;
  /** 127.0.0.11 already redirected to the network's resolver in this namespace. */
  resolver?: boolean;
}

/** Cluster-wide address claims for overlay endpoints (the control plane in `overlay.ts`). */
export interface ClusterIpam {
  /** Takes an address in the cluster; returns the settings with it fixed. */
  claim(net: NetworkRecord, record: ContainerRecord, cfg: EndpointSettings): Promise<EndpointSettings>;
  /** Tells the other hosts about endpoints now plugged in. */
  publish(eps: EndpointState[]): Promise<void>;
  release(ep: EndpointState): void;
}

export interface SandboxDeps {
  store: NetworkStore;
  config: DaemonConfig;
  events: EventBus;
  containers: ContainerDirectory;
  drivers: Record<string, NetworkDriver>;
  names: HostNames;
  dns: EmbeddedDns;
  etc: EtcFiles;
  applyFirewall: () => Promise<void>;
  /** Runs a section under the service's mutex (background refills and sweeps). */
  locked: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Present with a cluster store. */
  clusterIpam: () => ClusterIpam | undefined;
}

export class Sandboxes {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  /**
   * One ready-made sandbox per bridge network that has been used: a namespace with its veth on the
   * bridge, an address, the route. A start takes it and another is made in the background. Spares
   * are not in the state file: they are removed at close and swept at open (`<netns prefix>s…`).
   */
  private readonly spares = new Map<string, Spare>();

  constructor(private readonly d: SandboxDeps) {}

  private get state() {
    return this.d.store.state;
  }

  isRouted(net: NetworkRecord): boolean {
    return this.d.drivers[net.Driver]?.routed === true;
  }

  /** The networks a container asks for, primary first, with their endpoint settings. */
  wanted(record: ContainerRecord): { net: NetworkRecord; cfg: EndpointSettings }[] {
    const store = this.d.store;
    const primaryRef = networkRef(record.HostConfig.NetworkMode);
    const eps = record.NetworkingConfig?.EndpointsConfig ?? {};
    const out: { net: NetworkRecord; cfg: EndpointSettings }[] = [];
    const primary = store.get(primaryRef);
    // Left by `network disconnect`: only the networks connected since (none: loopback only).
    if (record.PrimaryNetworkLeft) {
      for (const [key, cfg] of Object.entries(eps)) {
        const net = key === 'default' ? store.get('bridge') : store.get(key);
        if (!out.some((o) => o.net.Id === net.Id)) out.push({ net, cfg: cfg ?? {} });
      }
      return out;
    }
    const cfgFor = (net: NetworkRecord, key?: string) =>
      (key !== undefined ? eps[key] : undefined) ??
      eps[net.Name] ??
      eps[net.Id] ??
      (net.Name === 'bridge' ? eps.default : undefined) ??
      {};
    out.push({ net: primary, cfg: cfgFor(primary, primaryRef) });
    for (const [key, cfg] of Object.entries(eps)) {
      if (key === 'default') continue;
      const net = store.get(key);
      if (out.some((o) => o.net.Id === net.Id)) continue;
      out.push({ net, cfg: cfg ?? {} });
    }
    return out;
  }

  async attach(record: ContainerRecord): Promise<NetworkAttachment> {
    const { store, etc, dns } = this.d;
    const mode = record.HostConfig.NetworkMode ?? 'default';
    if (this.state.sandboxes.some((s) => s.containerId === record.Id)) await this.teardown(record.Id);
    if (dns.hostNameservers.length === 0) dns.hostNameservers = (await hostResolvConf()).nameservers;
    const base = emptySettings();
    if (mode.startsWith('container:')) {
      const target = this.d.containers.get(mode.slice('container:'.length));
      if (!target.State.Running)
        throw conflict(`cannot join network namespace of a non running container: ${target.Id}`);
      const tsb = this.state.sandboxes.find((s) => s.containerId === target.Id);
      const hostNet = target.HostConfig.NetworkMode === 'host';
      return {
        hostNetwork: hostNet,
        netnsPath: hostNet ? undefined : tsb ? netnsPath(tsb.netns) : `/proc/${target.State.Pid}/ns/net`,
        hosts: etc.extraHosts(record),
        addresses: [],
        resolvConf: await etc.resolvConf(record, undefined, false),
        settings: { ...base, SandboxKey: tsb ? netnsPath(tsb.netns) : '' },
      };
    }
    const claims: EndpointState[] = [];
    const wanted = await this.claimed(record, this.wanted(record), claims);
    if (wanted.length === 0) wanted.push({ net: store.get('none'), cfg: {} });
    const primary = wanted[0].net;
    if (primary.Driver === 'host' || primary.Driver === 'null') {
      return {
        hostNetwork: primary.Driver === 'host',
        hosts: etc.extraHosts(record),
        addresses: [],
        resolvConf: await etc.resolvConf(record, primary, false),
        settings: { ...base, Networks: record.PrimaryNetworkLeft && primary.Driver === 'null' ? {} : { [primary.Name]: endpointView(primary, undefined, wanted[0].cfg) } },
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
      setImmediate(() => void this.d.locked(() => this.refill(primary.Id)));
    const sb: SandboxState = {
      containerId: record.Id,
      netns: spare?.netns ?? this.d.names.netns(record.Id),
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
        const plan = this.d.drivers[net.Driver].join(net, ep, sb.netns, i === 0);
        host.push(...plan.host);
        ns.push(...plan.ns);
        this.state.endpoints.push(ep);
      }
      const first = made[0];
      if (this.isRouted(primary) && !primary.Internal) {
        const reqs = portRequests(record);
        if (reqs.length && !this.d.config.iptables)
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
      const nsSide = spare ? Promise.resolve() : ipBatch(ns, sb.netns);
      const resolver = this.resolverGateway(primary);
      const jobs = [resolver && !spare?.resolver ? nsSide.then(() => redirectResolver(sb.netns, resolver)) : nsSide, store.save()];
      if (sb.ports.length) jobs.push(this.d.applyFirewall());
      const results = await Promise.allSettled(jobs);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    } catch (err) {
      for (const c of claims) this.d.clusterIpam()?.release(c);
      this.state.endpoints = this.state.endpoints.filter((e) => !made.includes(e));
      this.state.sandboxes = this.state.sandboxes.filter((s) => s !== sb);
      if (nsMade) await this.removeHostObjects(sb.netns, made);
      if (sb.ports.length) await this.d.applyFirewall().catch(() => {});
      await store.save().catch(() => {});
      throw err;
    }
    await this.publish(made);
    for (const ep of made) {
      const net = store.byId(ep.networkId)!;
      this.d.events.publish('network', 'connect', net.Id, {
        container: record.Id,
        name: net.Name,
        type: net.Driver,
      });
    }
    return {
      hostNetwork: false,
      netnsPath: netnsPath(sb.netns),
      hosts: [...etc.extraHosts(record), ...etc.linkHosts(record)],
      addresses: made.map((e) => e.ip),
      resolvConf: await etc.resolvConf(record, primary, this.isRouted(primary)),
      settings: settingsFor(store, record, sb),
    };
  }

  private isOverlay(networkId: string): boolean {
    return this.d.store.byId(networkId)?.Driver === 'overlay';
  }

  /** Overlay endpoints get their address from the cluster first (noted in `claims` for a rollback). */
  private async claimed(
    record: ContainerRecord,
    wanted: { net: NetworkRecord; cfg: EndpointSettings }[],
    claims: EndpointState[],
  ): Promise<{ net: NetworkRecord; cfg: EndpointSettings }[]> {
    const ipam = this.d.clusterIpam();
    const out: { net: NetworkRecord; cfg: EndpointSettings }[] = [];
    try {
      for (const w of wanted) {
        if (w.net.Driver !== 'overlay') {
          out.push(w);
          continue;
        }
        if (!ipam) throw invalid('overlay networks need a cluster store (--cluster-store)');
        const cfg = await ipam.claim(w.net, record, w.cfg);
        claims.push({ networkId: w.net.Id, ip: cfg.IPAMConfig!.IPv4Address!, containerId: record.Id } as EndpointState);
        out.push({ net: w.net, cfg });
      }
    } catch (err) {
      for (const c of claims) ipam?.release(c);
      throw err;
    }
    return out;
  }

  private async publish(eps: EndpointState[]): Promise<void> {
    const overlay = eps.filter((e) => this.isOverlay(e.networkId));
    if (overlay.length === 0) return;
    // A store gone at this moment: the endpoints are republished when the host registers again.
    await this.d
      .clusterIpam()
      ?.publish(overlay)
      .catch((err: unknown) => log.warn('cannot publish overlay endpoints', { err: (err as Error).message }));
  }

  private release(eps: EndpointState[]): void {
    for (const ep of eps) if (this.isOverlay(ep.networkId)) this.d.clusterIpam()?.release(ep);
  }

  private leasedOn(networkId: string): Set<number> {
    const leased = new Set(
      this.state.endpoints.filter((e) => e.networkId === networkId).map((e) => ipToNum(e.ip)),
    );
    for (const sp of this.spares.values()) if (sp.networkId === networkId) leased.add(ipToNum(sp.ip));
    return leased;
  }

  newEndpoint(
    record: ContainerRecord,
    net: NetworkRecord,
    cfg: EndpointSettings,
    ifName: string,
    spare?: Spare,
  ): EndpointState {
    const plan = this.d.store.planOf(net);
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
      hostIf: spare
        ? spare.hostIf
        : net.Driver === 'bridge' || net.Driver === 'overlay'
          ? this.d.names.veth(record.Id, net.Id)
          : undefined,
      ip: numToIp(ip),
      prefix: plan.subnet.prefix,
      gateway: net.Internal && net.Driver === 'bridge' ? '' : numToIp(plan.gateway),
      mac: spare ? spare.mac : cfg.MacAddress || macFor(ip),
      aliases: userNet ? [...(cfg.Aliases ?? [])] : [],
      dnsNames: userNet ? [name, ...(cfg.Aliases ?? []), shortId(record.Id)] : [],
    };
  }

  /** Plugs a running container into one more network (network connect); returns the new endpoint. */
  async plug(
    record: ContainerRecord,
    sb: SandboxState,
    net: NetworkRecord,
    cfg: EndpointSettings,
  ): Promise<EndpointState> {
    if (cfg.IPAMConfig?.IPv4Address && this.spares.get(net.Id)?.ip === cfg.IPAMConfig.IPv4Address)
      await this.dropSpare(net.Id);
    const used = this.d.store.endpointsOf(record.Id).map((e) => Number(e.ifName.slice(3)));
    let i = 0;
    while (used.includes(i)) i++;
    const claims: EndpointState[] = [];
    cfg = (await this.claimed(record, [{ net, cfg }], claims))[0].cfg;
    let ep: EndpointState;
    try {
      ep = this.newEndpoint(record, net, cfg, `eth${i}`);
    } catch (err) {
      this.release(claims);
      throw err;
    }
    const driver = this.d.drivers[net.Driver];
    const plan = driver.join(net, ep, sb.netns, used.length === 0);
    this.state.endpoints.push(ep);
    try {
      await ipBatch(plan.host);
      await ipBatch(plan.ns, sb.netns);
      await this.d.store.save();
    } catch (err) {
      this.release(claims);
      this.state.endpoints = this.state.endpoints.filter((e) => e !== ep);
      const leave = driver.leave(net, ep, sb.netns);
      await ipBatch(leave.host, undefined, true).catch(() => {});
      await ipBatch(leave.ns, sb.netns, true).catch(() => {});
      throw err;
    }
    await this.publish([ep]);
    return ep;
  }

  /** Unplugs one endpoint of a running container (network disconnect), with its published ports. */
  async unplug(sb: SandboxState, net: NetworkRecord, ep: EndpointState): Promise<void> {
    const leave = this.d.drivers[net.Driver].leave(net, ep, sb.netns);
    await ipBatch(leave.ns, sb.netns, true).catch(() => {});
    await ipBatch(leave.host, undefined, true).catch(() => {});
    this.state.endpoints = this.state.endpoints.filter((e) => e !== ep);
    this.release([ep]);
    const lost = sb.ports.filter((p) => p.containerIp === ep.ip && p.ifname === net.ifname);
    if (lost.length) {
      sb.ports = sb.ports.filter((p) => !lost.includes(p));
      await this.d.applyFirewall();
    }
    await this.d.store.save();
  }

  /**
   * Deletes the namespace and, with `links`, the endpoints' host links first. Without it the
   * kernel removes the veths with the namespace, asynchronously: deleting a veth explicitly waits
   * for an RCU grace period (10–20 ms), which a container's exit need not wait for.
   */
  private async removeHostObjects(netns: string, eps: EndpointState[], links = true): Promise<void> {
    const host: string[] = [];
    for (const ep of eps) {
      const net = this.d.store.byId(ep.networkId);
      const d = net && this.d.drivers[net.Driver];
      if (d && links) host.push(...d.leave(net, ep, netns).host);
      // Until the kernel frees the namespace, its veth must not answer for an address that
      // may be leased again at once: take it off the bridge now (cheap, unlike deletion).
      else if (ep.hostIf) host.push(`link set dev ${ep.hostIf} down nomaster`);
    }
    host.push(`netns del ${netns}`);
    await ipBatch(host, undefined, true).catch(() => {});
  }

  /** Removes a container's namespace, links, leases and port rules. */
  async teardown(containerId: string): Promise<void> {
    const store = this.d.store;
    const sb = this.state.sandboxes.find((s) => s.containerId === containerId);
    const eps = store.endpointsOf(containerId);
    if (!sb && eps.length === 0) return;
    this.release(eps);
    store.dropSandbox(containerId);
    const jobs: Promise<void>[] = [store.save()];
    if (sb) jobs.push(this.removeHostObjects(sb.netns, eps, false));
    if (sb?.ports.length) jobs.push(this.d.applyFirewall());
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
      const net = store.byId(ep.networkId);
      if (net)
        this.d.events.publish('network', 'disconnect', net.Id, {
          container: containerId,
          name: net.Name,
          type: net.Driver,
        });
    }
  }

  /** Makes the spare sandbox of a bridge network (run under the mutex, off any start's path). */
  /** The gateway whose embedded DNS answers at 127.0.0.11 in the network's namespaces (user networks only, as Docker). */
  resolverGateway(net: NetworkRecord): string | undefined {
    if (net.predefined || !this.isRouted(net) || !this.d.dns.serves(net.Id)) return undefined;
    return numToIp(this.d.store.planOf(net).gateway);
  }

  private async refill(networkId: string): Promise<void> {
    if (this.closed || this.spares.has(networkId)) return;
    const net = this.d.store.byId(networkId);
    if (net?.Driver !== 'bridge') return;
    const plan = this.d.store.planOf(net);
    const ipNum = allocateAddress(plan, this.leasedOn(net.Id));
    if (ipNum === undefined) return;
    const tag = randomBytes(6).toString('hex').slice(0, 11);
    const sp: Spare = {
      networkId,
      netns: `${this.d.names.netnsPrefix}s${tag}`,
      hostIf: this.d.names.veth(`spare-${tag}`, networkId),
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
    const join = this.d.drivers.bridge.join(net, ep, sp.netns, true);
    this.spares.set(networkId, sp); // its address is taken from now on
    try {
      await ipBatch([`netns add ${sp.netns}`, ...join.host]);
      await ipBatch(['link set dev lo up', ...join.ns], sp.netns);
      const resolver = this.resolverGateway(net);
      if (resolver) {
        await redirectResolver(sp.netns, resolver);
        sp.resolver = true;
      }
    } catch (err) {
      this.spares.delete(networkId);
      await ipBatch([`link del dev ${sp.hostIf}`, `netns del ${sp.netns}`], undefined, true).catch(() => {});
      log.debug('cannot make a spare sandbox', { network: net.Name, err });
    }
  }

  async dropSpare(networkId: string): Promise<void> {
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
    return this.d.locked(async () => {
      if (this.closed) return;
      const stale = names.filter((n) => !this.state.endpoints.some((e) => e.hostIf === n));
      const present = new Set((await listLinks().catch(() => [])).map((l) => l.ifname));
      const del = stale.filter((n) => present.has(n)).map((n) => `link del dev ${n}`);
      await ipBatch(del, undefined, true).catch(() => {});
    });
  }

  /** At daemon start: sandboxes of containers that are no longer running go. */
  async restore(running: ContainerRecord[]): Promise<void> {
    const alive = new Set(running.map((r) => r.Id));
    for (const sb of [...this.state.sandboxes])
      if (!alive.has(sb.containerId)) await this.teardown(sb.containerId);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.spares.keys()]) await this.dropSpare(id);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
