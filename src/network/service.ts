/**
 * The network service: networks (bridge, host, none, macvlan) and the /networks API, over the
 * layer's parts: the records (`store.ts`), containers' sandboxes and spare sandboxes
 * (`sandboxes.ts`), the etc files (`etc-files.ts`), the embedded DNS (`resolver.ts`), the
 * firewall table (`firewall.ts`) and the drivers (`drivers.ts`; overlay networks in `overlay.ts`,
 * present when berthd runs with a cluster store). One mutex orders every change.
 */

import type { ClusterStore } from '../cluster/store.js';
import type { ContainerRecord, EndpointSettings } from '../model/container.js';
import type { ContainerDirectory } from '../model/container-directory.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import type { EventBus } from '../model/events.js';
import type { Filters } from '../model/filters.js';
import { conflict, forbidden, invalid, notFound, systemError } from '../util/errors.js';
import { shortId } from '../util/ids.js';
import { log } from '../util/log.js';
import { Mutex } from '../util/mutex.js';
import { BRIDGE_NAME_OPTION, BridgeDriver, MacvlanDriver, type NetworkDriver } from './drivers.js';
import { EtcFiles } from './etc-files.js';
import { listFilter, pruneFilter } from './filters.js';
import { closeNftShell, Firewall, type FirewallNet } from './firewall.js';
import {
  closeIpShell,
  hostRoutes,
  ipBatch,
  listLinks,
  listNetns,
  setIpScratchDir,
  setSysctl,
} from './host.js';
import type {
  NetworkAttachment,
  NetworkChange,
  NetworkCreateRequest,
  NetworkService,
  NetworkView,
} from './index.js';
import {
  carveSubnet,
  checkFixedAddress,
  formatCidr,
  numToIp,
  overlaps,
  parseCidr,
  planSubnet,
} from './ipam.js';
import { type HostNames, hostNames } from './names.js';
import { OverlayControl, OverlayDriver, overlayLinks } from './overlay.js';
import { checkPortRequests } from './ports.js';
import { EmbeddedDns } from './resolver.js';
import { Sandboxes } from './sandboxes.js';
import { NetworkStore, networkRef } from './store.js';
import type { NetworkRecord } from './types.js';
import { clearSettings, endpointView, networkView, settingsFor } from './views.js';

export interface NetworkServiceOptions {
  config: DaemonConfig;
  events: EventBus;
  containers: ContainerDirectory;
  /** Present when berthd runs with --cluster-store: overlay networks. */
  cluster?: ClusterStore;
}

export class BerthNetworks implements NetworkService {
  private readonly store: NetworkStore;
  private readonly names: HostNames;
  private readonly firewall: Firewall;
  private readonly drivers: Record<string, NetworkDriver> = {
    bridge: new BridgeDriver(),
    macvlan: new MacvlanDriver(),
  };
  private readonly overlayDriver: OverlayDriver;
  private overlay?: OverlayControl;
  private readonly dns: EmbeddedDns;
  private readonly etc: EtcFiles;
  private readonly sandboxes: Sandboxes;
  private readonly mutex = new Mutex();
  private readonly nameOf = (id: string) => this.dns.containerName(id);

  constructor(
    private readonly config: DaemonConfig,
    private readonly events: EventBus,
    private readonly containers: ContainerDirectory,
    private readonly cluster?: ClusterStore,
  ) {
    this.overlayDriver = new OverlayDriver(config.instance, () => cluster?.addr || undefined);
    this.drivers.overlay = this.overlayDriver;
    this.store = new NetworkStore(config);
    this.names = hostNames(config.instance);
    this.firewall = new Firewall(this.names.table, this.names.ruleComment, config.iptables);
    this.dns = new EmbeddedDns(this.store, config, containers);
    this.etc = new EtcFiles(this.store, this.dns, config, containers);
    this.sandboxes = new Sandboxes({
      store: this.store,
      config,
      events,
      containers,
      drivers: this.drivers,
      names: this.names,
      dns: this.dns,
      etc: this.etc,
      applyFirewall: () => this.applyFirewall(),
      locked: (fn) => this.mutex.run(fn),
      clusterIpam: () => this.overlay,
    });
  }

  // ---------------------------------------------------------------- start-up and shutdown

  async open(): Promise<void> {
    await setIpScratchDir(`${this.config.execRoot}/network`);
    await this.store.load();
    const loaded = JSON.stringify(this.store.state);
    if (this.config.ipForward) await setSysctl('net.ipv4.ip_forward', '1');
    const { networks, endpoints } = this.store.state;
    for (const net of networks) {
      const driver = this.drivers[net.Driver];
      if (!driver) continue;
      try {
        await driver.up(net, this.store.planOf(net));
      } catch (err) {
        log.warn('cannot bring network up', { network: net.Name, err });
      }
    }
    // Sandboxes whose namespace is gone (host reboot): nothing to keep.
    const present = new Set(await listNetns());
    // Spares, and namespaces of a start cut short before its sandbox was saved (no sandbox names
    // them; the start's process, if any, is deleted by the container restore).
    const known = new Set(this.store.state.sandboxes.map((sb) => sb.netns));
    const prefix = this.names.netnsPrefix;
    const leftSpares = [...present].filter(
      (n) => n.startsWith(`${prefix}s`) || (n.startsWith(prefix) && !known.has(n)),
    );
    await ipBatch(
      leftSpares.map((n) => `netns del ${n}`),
      undefined,
      true,
    ).catch(() => {});
    for (const sb of [...this.store.state.sandboxes])
      if (!present.has(sb.netns)) this.store.dropSandbox(sb.containerId);
    // Ports on our bridges that no endpoint owns (spares of a crashed run, namespaces still being
    // freed): off the bridge and deleted, so that their addresses can be leased again safely.
    const bridges = new Set(
      networks.filter((n) => n.Driver === 'bridge' || n.Driver === 'overlay').map((n) => n.ifname),
    );
    const owned = new Set(endpoints.map((e) => e.hostIf));
    const vethPrefix = this.config.instance ? `vb${this.config.instance}` : 'vb-';
    const strays = (await listLinks().catch(() => [])).filter(
      (l) => l.master && bridges.has(l.master) && l.ifname.startsWith(vethPrefix) && !owned.has(l.ifname),
    );
    await ipBatch(
      strays.map((l) => `link del dev ${l.ifname}`),
      undefined,
      true,
    ).catch(() => {});
    // Written only when the start changed something: a daemon must come up on a full disk, and
    // what was dropped above is dropped again at the next start should this write fail.
    if (JSON.stringify(this.store.state) !== loaded)
      await this.store.save().catch((err) => log.warn('cannot save the network state', { err: String(err) }));
    await this.applyFirewall();
    for (const net of this.store.state.networks) await this.startDns(net);
    if (this.cluster) {
      this.overlay = new OverlayControl(this.cluster, this.overlayDriver, {
        apply: (nets) => this.mutex.run(() => this.applyOverlay(nets)),
        localEndpoints: () =>
          this.store.state.endpoints.filter((e) => this.store.byId(e.networkId)?.Driver === 'overlay'),
        network: (id) => this.store.byId(id),
      });
      this.store.remoteEndpoints = () => this.overlay?.remoteEndpoints() ?? [];
    }
  }

  /** The store's overlay networks become local records (made on this host when new); gone ones go. */
  private async applyOverlay(nets: NetworkRecord[]): Promise<void> {
    const ids = new Set(nets.map((n) => n.Id));
    let changed = false;
    for (const n of nets) if (!this.store.byId(n.Id)) changed = (await this.addOverlay(n)) || changed;
    for (const net of this.store.state.networks.filter((n) => n.Driver === 'overlay' && !ids.has(n.Id))) {
      // Kept while containers of this host still use it (their endpoints went with a lost lease).
      if (this.store.state.endpoints.some((e) => e.networkId === net.Id)) continue;
      await this.removeNetwork(net);
    }
    if (changed) {
      await this.applyFirewall();
      await this.store.save();
    }
  }

  private readonly hiddenOverlays = new Set<string>();

  private async addOverlay(n: NetworkRecord): Promise<boolean> {
    if (this.store.state.networks.some((o) => o.Name === n.Name)) {
      if (!this.hiddenOverlays.has(n.Id))
        log.warn('overlay network hidden by a local network of the same name', { network: n.Name });
      this.hiddenOverlays.add(n.Id);
      return false;
    }
    // A local network on the same addresses (made before the overlay, or while this host was
    // away): bringing the overlay up would break both, so it stays away from this host.
    const sub = parseCidr(n.IPAM.Config[0].Subnet!);
    const clash = this.store.state.networks.find(
      (o) => o.Driver !== 'overlay' && o.IPAM.Config[0]?.Subnet && overlaps(parseCidr(o.IPAM.Config[0].Subnet), sub),
    );
    if (clash) {
      if (!this.hiddenOverlays.has(n.Id))
        log.warn('overlay network overlaps a local network; not brought up here', { network: n.Name, local: clash.Name });
      this.hiddenOverlays.add(n.Id);
      return false;
    }
    const net: NetworkRecord = { ...n, ifname: overlayLinks(this.config.instance, n.Id).bridge };
    try {
      await this.overlayDriver.up(net, this.store.planOf(net));
    } catch (err) {
      log.warn('cannot bring overlay network up', { network: net.Name, err });
      return false;
    }
    this.store.state.networks.push(net);
    await this.startDns(net);
    return true;
  }

  /** A network of the cluster this host has not seen yet (created elsewhere a moment ago). */
  private async findOrSync(ref: string): Promise<void> {
    if (this.overlay && !ref.startsWith('container:') && !this.store.find(ref))
      await this.overlay.sync().catch(() => {});
  }

  async close(): Promise<void> {
    await this.mutex.run(async () => {
      await this.sandboxes.close();
      await this.dns.close();
      closeIpShell();
      closeNftShell();
    });
  }

  private async startDns(net: NetworkRecord): Promise<void> {
    if (this.sandboxes.isRouted(net)) await this.dns.start(net);
  }

  private async applyFirewall(): Promise<void> {
    const { networks, sandboxes } = this.store.state;
    const nets: FirewallNet[] = networks
      .filter((n) => (n.Driver === 'bridge' || n.Driver === 'overlay') && n.ifname)
      .map((n) => ({
        ifname: n.ifname!,
        subnet: formatCidr(this.store.planOf(n).subnet),
        gateway: numToIp(this.store.planOf(n).gateway),
        internal: n.Internal,
        masquerade: n.Options['com.docker.network.bridge.enable_ip_masquerade'] !== 'false',
      }));
    await this.firewall.apply(
      nets,
      sandboxes.flatMap((s) => s.ports),
    );
  }

  private allContainers(): ContainerRecord[] {
    try {
      return this.containers.list();
    } catch {
      return [];
    }
  }

  // ---------------------------------------------------------------- container life cycle

  async validate(record: ContainerRecord): Promise<void> {
    const mode = record.HostConfig.NetworkMode ?? 'default';
    for (const ref of [mode, ...Object.keys(record.NetworkingConfig?.EndpointsConfig ?? {})])
      await this.findOrSync(networkRef(ref));
    if (mode.startsWith('container:')) {
      const target = this.containers.get(mode.slice('container:'.length));
      if (target.Id === record.Id) throw invalid('cannot join own network namespace');
      if (Object.keys(record.HostConfig.PortBindings ?? {}).length || record.HostConfig.PublishAllPorts)
        throw invalid('conflicting options: port publishing and the container type network mode');
      return;
    }
    const wanted = this.sandboxes.wanted(record);
    if (wanted.length === 0) return;
    const primary = wanted[0].net;
    if (primary.Driver === 'host' || primary.Driver === 'null') {
      if (wanted.length > 1)
        throw invalid(
          `container cannot be connected to multiple networks with one of the networks in ${primary.Name} mode`,
        );
      return;
    }
    for (const { net, cfg } of wanted) this.checkEndpointConfig(net, cfg);
    checkPortRequests(record);
  }

  plannedNetworks(record: ContainerRecord): Record<string, EndpointSettings> {
    if ((record.HostConfig.NetworkMode ?? '').startsWith('container:')) return {};
    const out: Record<string, EndpointSettings> = {};
    for (const { net, cfg } of this.sandboxes.wanted(record)) out[net.Name] = endpointView(net, undefined, cfg);
    return out;
  }

  private checkEndpointConfig(net: NetworkRecord, cfg: EndpointSettings): void {
    const ip = cfg.IPAMConfig?.IPv4Address;
    if (ip) {
      if (net.predefined)
        throw invalid('user specified IP address is supported on user defined networks only');
      checkFixedAddress(this.store.planOf(net), ip, new Set());
    }
    if (net.predefined && cfg.Aliases?.length)
      throw invalid('network-scoped alias is supported only for containers in user defined networks');
  }

  async attach(record: ContainerRecord): Promise<NetworkAttachment> {
    const t0 = performance.now();
    const a = await this.mutex.run(() => this.sandboxes.attach(record));
    await this.etc.write(record, a);
    log.debug('network attach', { id: shortId(record.Id), ms: Math.round(performance.now() - t0) });
    return a;
  }

  async detach(record: ContainerRecord): Promise<void> {
    const t0 = performance.now();
    await this.mutex.run(() => this.sandboxes.teardown(record.Id));
    clearSettings(record);
    log.debug('network detach', { id: shortId(record.Id), ms: Math.round(performance.now() - t0) });
  }

  async restore(running: ContainerRecord[]): Promise<void> {
    await this.mutex.run(async () => {
      await this.sandboxes.restore(running);
      await this.applyFirewall();
    });
  }

  // ---------------------------------------------------------------- API

  async list(filters: Filters): Promise<NetworkView[]> {
    const keep = listFilter(filters, this.store.usedNetworkIds(this.allContainers()));
    return this.store.state.networks.filter(keep).map((n) => networkView(this.store, n, this.nameOf));
  }

  async inspect(ref: string): Promise<NetworkView> {
    await this.findOrSync(ref);
    return networkView(this.store, this.store.get(ref), this.nameOf);
  }

  async create(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    return this.mutex.run(async () => {
      const name = req.Name;
      if (!name || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name))
        throw invalid(`invalid network name: "${name ?? ''}"`);
      if (this.store.state.networks.some((n) => n.Name === name))
        throw conflict(`network with name ${name} already exists`);
      const driverName = req.Driver || 'bridge';
      if (driverName === 'host' || driverName === 'null')
        throw forbidden(`only one instance of "${driverName}" network is allowed`);
      if (driverName === 'overlay') return this.createOverlay(req);
      const driver = this.drivers[driverName];
      if (!driver) throw notFound(`plugin "${driverName}" not found`);
      if (req.EnableIPv6) throw invalid('IPv6 networks are not supported by this daemon');
      if (req.IPAM?.Driver && req.IPAM.Driver !== 'default')
        throw notFound(`plugin "${req.IPAM.Driver}" not found`);
      const configs = req.IPAM?.Config ?? [];
      if (configs.length > 1) throw invalid('only one IPv4 subnet per network is supported');
      const net: NetworkRecord = {
        ...this.store.blank(name, driver.name),
        Internal: !!req.Internal,
        Attachable: !!req.Attachable,
        Options: { ...(req.Options ?? {}) },
        Labels: { ...(req.Labels ?? {}) },
      };
      // Subnet: given, or carved from the pools around every subnet in use.
      const ours = this.store.state.networks
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
        const s = carveSubnet(this.store.pools, [...ours, ...routes]);
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
        if (this.store.state.networks.some((n) => n.ifname === br && n.Driver === 'bridge'))
          throw conflict(`bridge name ${br} is already in use`);
        net.ifname = br;
      } else {
        net.ifname = net.Options.parent;
      }
      await driver.validate(net);
      try {
        await driver.up(net, plan);
        this.store.state.networks.push(net);
        await this.applyFirewall();
        await this.store.save();
        await this.startDns(net);
      } catch (err) {
        this.store.state.networks = this.store.state.networks.filter((n) => n !== net);
        await this.dns.stop(net.Id);
        await driver.down(net).catch(() => {});
        await this.applyFirewall().catch(() => {});
        throw err;
      }
      this.events.publish('network', 'create', net.Id, { name: net.Name, type: net.Driver });
      return { Id: net.Id, Warning: '' };
    });
  }

  private async createOverlay(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    if (!this.overlay)
      throw forbidden(
        'overlay networks need a cluster store: start berthd with --cluster-store etcd://HOST:PORT and --cluster-advertise ADDRESS',
      );
    if (req.EnableIPv6) throw invalid('IPv6 networks are not supported by this daemon');
    if (req.IPAM?.Driver && req.IPAM.Driver !== 'default') throw notFound(`plugin "${req.IPAM.Driver}" not found`);
    const configs = req.IPAM?.Config ?? [];
    if (configs.length > 1) throw invalid('only one IPv4 subnet per network is supported');
    const base: NetworkRecord = {
      ...this.store.blank(req.Name, 'overlay'),
      Internal: !!req.Internal,
      Attachable: !!req.Attachable,
      Options: { ...(req.Options ?? {}) },
      Labels: { ...(req.Labels ?? {}) },
      IPAM: { Driver: 'default', Options: req.IPAM?.Options ?? {}, Config: [] },
    };
    // This host's subnets and routes (the underlay's among them) are not for the overlay.
    const localTaken = [
      ...this.store.state.networks
        .filter((n) => n.Driver !== 'overlay' && n.IPAM.Config[0]?.Subnet)
        .map((n) => parseCidr(n.IPAM.Config[0].Subnet!)),
      ...(await hostRoutes())
        .filter((r) => !this.store.state.networks.some((n) => n.Driver === 'overlay' && n.ifname === r.dev))
        .map((r) => r.cidr),
    ];
    const net = await this.overlay.create(base, configs[0] ?? {}, localTaken);
    if (!this.store.byId(net.Id)) {
      if (!(await this.addOverlay(net))) throw systemError(`cannot bring overlay network ${net.Name} up on this host`);
      await this.applyFirewall();
      await this.store.save();
    }
    this.events.publish('network', 'create', net.Id, { name: net.Name, type: net.Driver });
    return { Id: net.Id, Warning: '' };
  }

  async remove(ref: string): Promise<void> {
    await this.findOrSync(ref);
    await this.mutex.run(async () => {
      const net = this.store.get(ref);
      if (net.predefined) throw forbidden(`${net.Name} is a pre-defined network and cannot be removed`);
      const eps = this.store.state.endpoints.filter((e) => e.networkId === net.Id);
      if (eps.length)
        throw forbidden(
          `error while removing network: network ${net.Name} has active endpoints (${eps.map((e) => this.dns.containerName(e.containerId)).join(', ')})`,
        );
      if (net.Driver === 'overlay') {
        if (!this.overlay) throw forbidden('overlay networks need a cluster store (--cluster-store)');
        await this.overlay.remove(net);
      }
      await this.removeNetwork(net);
    });
  }

  private async removeNetwork(net: NetworkRecord): Promise<void> {
    await this.sandboxes.dropSpare(net.Id);
    await this.dns.stop(net.Id);
    this.store.state.networks = this.store.state.networks.filter((n) => n !== net);
    await this.applyFirewall();
    await this.drivers[net.Driver]?.down(net);
    await this.store.save();
    this.events.publish('network', 'destroy', net.Id, { name: net.Name, type: net.Driver });
  }

  async prune(filters: Filters): Promise<string[]> {
    const wanted = pruneFilter(filters);
    return this.mutex.run(async () => {
      const used = this.store.usedNetworkIds(this.allContainers());
      const removed: string[] = [];
      for (const net of [...this.store.state.networks]) {
        if (net.predefined || used.has(net.Id) || !wanted(net)) continue;
        if (net.Driver === 'overlay') {
          // In use on another host, or the store is away: not pruned.
          if (!this.overlay) continue;
          const gone = await this.overlay.remove(net).then(
            () => true,
            () => false,
          );
          if (!gone) continue;
        }
        await this.removeNetwork(net);
        removed.push(net.Name);
      }
      return removed;
    });
  }

  async connect(
    ref: string,
    record: ContainerRecord,
    config: EndpointSettings | null | undefined,
  ): Promise<NetworkChange> {
    await this.findOrSync(ref);
    return this.mutex.run(async () => {
      const net = this.store.get(ref);
      const mode = networkRef(record.HostConfig.NetworkMode);
      if (
        net.Driver === 'host' ||
        net.Driver === 'null' ||
        mode === 'host' ||
        mode === 'none' ||
        mode.startsWith('container:')
      )
        throw forbidden('container cannot be disconnected from host network or connected to host network');
      const cfgs = { ...(record.NetworkingConfig?.EndpointsConfig ?? {}) };
      const primary = this.store.find(mode);
      const rejoin = primary?.Id === net.Id && record.PrimaryNetworkLeft === true;
      const already =
        (primary?.Id === net.Id && !rejoin) ||
        Object.keys(cfgs).some((k) => k !== 'default' && this.store.find(k)?.Id === net.Id) ||
        this.store.state.endpoints.some((e) => e.containerId === record.Id && e.networkId === net.Id);
      if (already)
        throw forbidden(
          `endpoint with name ${record.Name.replace(/^\//, '')} already exists in network ${net.Name}`,
        );
      const cfg: EndpointSettings = { ...(config ?? {}) };
      this.checkEndpointConfig(net, cfg);
      cfgs[net.Name] = cfg;
      const change: NetworkChange = {
        EndpointsConfig: cfgs,
        NetworkMode: record.HostConfig.NetworkMode,
        // Inspect lists a connected network at once, without an address until the container runs.
        NetworkSettings: { ...record.NetworkSettings, Networks: { ...record.NetworkSettings?.Networks, [net.Name]: endpointView(net, undefined, cfg) } },
        PrimaryNetworkLeft: rejoin ? false : record.PrimaryNetworkLeft,
      };
      const sb = this.store.state.sandboxes.find((s) => s.containerId === record.Id);
      if (sb) {
        const ep = await this.sandboxes.plug(record, sb, net, cfg);
        await this.etc.addAddress(record, ep);
        change.NetworkSettings = settingsFor(
          this.store,
          { ...record, NetworkingConfig: { EndpointsConfig: cfgs } },
          sb,
        );
      }
      this.events.publish('network', 'connect', net.Id, {
        container: record.Id,
        name: net.Name,
        type: net.Driver,
      });
      return change;
    });
  }

  async disconnect(ref: string, record: ContainerRecord): Promise<NetworkChange> {
    return this.mutex.run(async () => {
      const net = this.store.get(ref);
      if (net.Driver === 'host' || net.Driver === 'null')
        throw forbidden('container cannot be disconnected from host network or connected to host network');
      const cfgs = { ...(record.NetworkingConfig?.EndpointsConfig ?? {}) };
      const keys = Object.keys(cfgs).filter((k) =>
        k === 'default' ? net.Name === 'bridge' : this.store.find(k)?.Id === net.Id,
      );
      const primary = this.store.find(networkRef(record.HostConfig.NetworkMode));
      const ep = this.store.state.endpoints.find(
        (e) => e.containerId === record.Id && e.networkId === net.Id,
      );
      if (!ep && keys.length === 0 && primary?.Id !== net.Id)
        throw forbidden(`container ${record.Id} is not connected to network ${net.Name}`);
      const sb = this.store.state.sandboxes.find((s) => s.containerId === record.Id);
      if (ep && sb) {
        await this.sandboxes.unplug(sb, net, ep);
        await this.etc.removeAddress(record, ep);
      }
      for (const k of keys) delete cfgs[k];
      const change: NetworkChange = {
        EndpointsConfig: cfgs,
        // As Docker: the mode stays; the container has left that network.
        NetworkMode: record.HostConfig.NetworkMode,
        NetworkSettings: record.NetworkSettings,
        PrimaryNetworkLeft: primary?.Id === net.Id ? true : record.PrimaryNetworkLeft,
      };
      if (sb)
        change.NetworkSettings = settingsFor(
          this.store,
          { ...record, NetworkingConfig: { EndpointsConfig: cfgs } },
          sb,
        );
      else if (record.NetworkSettings?.Networks) {
        const { [net.Name]: _gone, ...rest } = record.NetworkSettings.Networks;
        change.NetworkSettings = { ...record.NetworkSettings, Networks: rest };
      }
      this.events.publish('network', 'disconnect', net.Id, {
        container: record.Id,
        name: net.Name,
        type: net.Driver,
      });
      return change;
    });
  }

  async disconnectGone(ref: string, containerRef: string): Promise<boolean> {
    return this.mutex.run(async () => {
      const net = this.store.get(ref);
      const ep = this.store.state.endpoints.find(
        (e) =>
          e.networkId === net.Id &&
          (e.containerId.startsWith(containerRef) || this.dns.containerName(e.containerId) === containerRef),
      );
      if (!ep) return false;
      this.store.state.endpoints = this.store.state.endpoints.filter((e) => e !== ep);
      if (ep.hostIf) await ipBatch([`link del dev ${ep.hostIf}`], undefined, true).catch(() => {});
      await this.store.save();
      return true;
    });
  }
}

export async function openNetworkService(opts: NetworkServiceOptions): Promise<NetworkService> {
  const svc = new BerthNetworks(opts.config, opts.events, opts.containers, opts.cluster);
  await svc.open();
  return svc;
}
