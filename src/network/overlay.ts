/**
 * Overlay networks across berthd hosts. The data plane (`OverlayDriver`): on each host a bridge
 * with the network's gateway address (each host is its containers' gateway, for DNS and NAT) and a
 * VXLAN port (VNI per network, UDP 4789, MTU 1450, no learning, ARP answered locally from the
 * neighbour table). Broadcasts never cross hosts: remote containers are reached through static
 * forwarding and neighbour entries, one per remote endpoint. The control plane (`OverlayControl`):
 * networks and endpoints live in the cluster store (etcd); address claims are etcd transactions,
 * endpoints hang on their host's lease, and every change seen by the store's watch re-programs
 * the entries and the records from one consistent snapshot.
 */
import type { ClusterStore, Snapshot } from '../cluster/store.js';
import type { ContainerRecord, EndpointSettings } from '../model/container.js';
import { conflict, forbidden, invalid, notFound, systemError, unavailable } from '../util/errors.js';
import { run } from '../util/exec.js';
import { log } from '../util/log.js';
import type { JoinPlan, NetworkDriver } from './drivers.js';
import { ipBatch, linkExists } from './host.js';
import {
  allocateAddress,
  type Cidr,
  carveSubnet,
  checkFixedAddress,
  formatCidr,
  ipToNum,
  macFor,
  numToIp,
  overlaps,
  parseCidr,
  planSubnet,
  type SubnetPlan,
} from './ipam.js';
import type { EndpointState, IpamConfigEntry, NetworkRecord } from './types.js';

export const VXLAN_PORT = 4789;
export const OVERLAY_MTU = 1450;
/** Docker's option name for an overlay network's VNI (shown by inspect). */
export const VNI_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';
const FIRST_VNI = 4096;
/** The cluster-wide pool overlay subnets are carved from (Docker swarm's default). */
export const CLUSTER_POOL = [{ base: '10.0.0.0/8', size: 24 }];

/** An endpoint as the store holds it: `endpoints/<network>/<ip>`, on its host's lease. */
export interface ClusterEndpoint {
  host: string;
  engineId: string;
  containerId: string;
  networkId: string;
  ip: string;
  /** Set once the endpoint is plugged in (a bare claim has none: peers ignore it). */
  mac?: string;
  dnsNames?: string[];
}

export function overlayLinks(instance: string, networkId: string): { bridge: string; vxlan: string } {
  return instance
    ? { bridge: `bo${instance}${networkId.slice(0, 7)}`, vxlan: `vo${instance}${networkId.slice(0, 7)}` }
    : { bridge: `bo-${networkId.slice(0, 8)}`, vxlan: `vo-${networkId.slice(0, 8)}` };
}

export function vniOf(net: NetworkRecord): number {
  const v = Number(net.Options[VNI_OPTION]);
  if (!Number.isInteger(v) || v < 1 || v > 16777215)
    throw invalid(`invalid VXLAN ID: ${net.Options[VNI_OPTION]}`);
  return v;
}

interface Peer {
  mac: string;
  ip: string;
  host: string;
}

export class OverlayDriver implements NetworkDriver {
  readonly name = 'overlay' as const;
  readonly routed = true;
  /** Forwarding entries programmed per network (VXLAN device), keyed `mac ip host`. */
  private readonly programmed = new Map<string, Map<string, Peer>>();

  constructor(
    private readonly instance: string,
    private readonly localAddr: () => string | undefined,
  ) {}

  async validate(net: NetworkRecord): Promise<void> {
    vniOf(net);
  }

  async up(net: NetworkRecord, plan: SubnetPlan): Promise<void> {
    const local = this.localAddr();
    if (!local)
      throw forbidden(
        'overlay networks need a cluster: start berthd with --cluster-store and --cluster-advertise',
      );
    const { bridge, vxlan } = overlayLinks(this.instance, net.Id);
    const lines: string[] = [];
    if (!(await linkExists(bridge))) lines.push(`link add name ${bridge} mtu ${OVERLAY_MTU} type bridge`);
    // A fresh VXLAN device: its entries are then exactly the ones programmed from the store.
    if (await linkExists(vxlan)) lines.push(`link del dev ${vxlan}`);
    this.programmed.delete(net.Id);
    lines.push(
      `link add name ${vxlan} mtu ${OVERLAY_MTU} type vxlan id ${vniOf(net)} dstport ${VXLAN_PORT} local ${local} nolearning proxy`,
      `link set dev ${vxlan} master ${bridge} up`,
      `link set dev ${bridge} address ${macFor(plan.gateway)}`,
      `addr replace ${numToIp(plan.gateway)}/${plan.subnet.prefix} dev ${bridge}`,
      `link set dev ${bridge} up`,
    );
    await ipBatch(lines);
  }

  async down(net: NetworkRecord): Promise<void> {
    const { bridge, vxlan } = overlayLinks(this.instance, net.Id);
    this.programmed.delete(net.Id);
    await ipBatch([`link del dev ${vxlan}`, `link del dev ${bridge}`], undefined, true);
  }

  join(net: NetworkRecord, ep: EndpointState, netns: string, defaultRoute: boolean): JoinPlan {
    const lines = [
      `link set dev ${ep.ifName} address ${ep.mac} mtu ${OVERLAY_MTU}`,
      `addr add ${ep.ip}/${ep.prefix} dev ${ep.ifName}`,
      `link set dev ${ep.ifName} up`,
      // ARP for an address whose owner (on another host) is not programmed yet is retried every
      // 100 ms, not every second: the VXLAN device answers as soon as the watch adds the entry.
      `ntable change name arp_cache dev ${ep.ifName} retrans 100`,
    ];
    if (defaultRoute && ep.gateway) lines.push(`route add default via ${ep.gateway} dev ${ep.ifName}`);
    return {
      host: [
        `link add name ${ep.hostIf} mtu ${OVERLAY_MTU} type veth peer name ${ep.ifName} netns ${netns}`,
        `link set dev ${ep.hostIf} master ${overlayLinks(this.instance, net.Id).bridge} up`,
      ],
      ns: lines,
    };
  }

  leave(_net: NetworkRecord, ep: EndpointState): JoinPlan {
    return { host: ep.hostIf ? [`link del dev ${ep.hostIf}`] : [], ns: [] };
  }

  /** Makes the VXLAN device's forwarding and neighbour entries exactly `peers` (remote endpoints). */
  async program(net: NetworkRecord, peers: Peer[]): Promise<void> {
    const { vxlan } = overlayLinks(this.instance, net.Id);
    const cur = this.programmed.get(net.Id) ?? new Map<string, Peer>();
    const want = new Map(peers.map((p) => [`${p.mac} ${p.ip} ${p.host}`, p]));
    const gone = [...cur].filter(([k]) => !want.has(k)).map(([, p]) => p);
    const added = [...want].filter(([k]) => !cur.has(k)).map(([, p]) => p);
    if (!gone.length && !added.length) return;
    const wantMacs = new Set(peers.map((p) => p.mac));
    const wantIps = new Set(peers.map((p) => p.ip));
    const fdb = [
      ...gone.filter((p) => !wantMacs.has(p.mac)).map((p) => `fdb del ${p.mac} dev ${vxlan} self`),
      ...added.map((p) => `fdb replace ${p.mac} dev ${vxlan} dst ${p.host} self permanent`),
    ];
    const neigh = [
      ...gone.filter((p) => !wantIps.has(p.ip)).map((p) => `neigh del ${p.ip} dev ${vxlan}`),
      ...added.map((p) => `neigh replace ${p.ip} lladdr ${p.mac} dev ${vxlan} nud permanent`),
    ];
    const r = await run('bridge', ['-force', '-batch', '-'], {
      input: `${fdb.join('\n')}\n`,
      allowFail: true,
    });
    if (r.code !== 0 && added.length)
      log.warn('cannot program overlay forwarding entries', { network: net.Name, err: r.stderr.trim() });
    await ipBatch(neigh, undefined, true);
    this.programmed.set(net.Id, want);
  }
}

/** What the control plane needs of the network service. */
export interface OverlayHost {
  /** Makes the local records of overlay networks those of the store (adds and removes). */
  apply(nets: NetworkRecord[]): Promise<void>;
  /** This host's overlay endpoints now (republished under a new lease). */
  localEndpoints(): EndpointState[];
  network(id: string): NetworkRecord | undefined;
}

const netKey = (id: string) => `networks/${id}`;
const epPrefix = (netId: string) => `endpoints/${netId}/`;
const epKey = (netId: string, ip: string) => `${epPrefix(netId)}${ip}`;

function parse<T>(v: string): T | undefined {
  try {
    return JSON.parse(v) as T;
  } catch {
    return undefined;
  }
}

export function clusterNetworks(snap: Snapshot): NetworkRecord[] {
  const out: NetworkRecord[] = [];
  for (const [k, v] of snap.kvs)
    if (k.startsWith('networks/')) {
      const n = parse<NetworkRecord>(v);
      if (n) out.push(n);
    }
  return out;
}

export function clusterEndpoints(snap: Snapshot): ClusterEndpoint[] {
  const out: ClusterEndpoint[] = [];
  for (const [k, v] of snap.kvs)
    if (k.startsWith('endpoints/')) {
      const e = parse<ClusterEndpoint>(v);
      if (e) out.push(e);
    }
  return out;
}

export class OverlayControl {
  /** Endpoints of other hosts, for the embedded DNS. */
  private remote: EndpointState[] = [];
  /** Keys claimed by an attach in progress (not yet in the local records). */
  private readonly pending = new Set<string>();
  /** Snapshots are applied one at a time, never an older one after a newer one. */
  private applying: Promise<void> = Promise.resolve();
  private appliedRevision = 0;

  constructor(
    readonly cluster: ClusterStore,
    private readonly driver: OverlayDriver,
    private readonly host: OverlayHost,
  ) {
    cluster.onRegistered((lease) => this.republish(lease));
    cluster.onSnapshot((s) => this.onSnapshot(s));
  }

  remoteEndpoints(): EndpointState[] {
    return this.remote;
  }

  private async read(): Promise<Snapshot> {
    this.cluster.requireLease();
    try {
      return await this.cluster.snapshot();
    } catch (err) {
      throw this.cluster.storeError(err);
    }
  }

  /** Reads the store now and applies it (a network created on another host a moment ago). */
  async sync(): Promise<void> {
    await this.onSnapshot(await this.read());
  }

  // ---------------------------------------------------------------- networks

  /**
   * Records a new overlay network in the store: a name unique in the cluster, a subnet that
   * overlaps no other overlay network nor a local network or route of this host, the next free VNI.
   * Optimistic: the transaction holds only if no other network was made or removed meanwhile.
   */
  async create(base: NetworkRecord, entry: IpamConfigEntry, localTaken: Cidr[]): Promise<NetworkRecord> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const snap = await this.read();
      const nets = clusterNetworks(snap);
      if (nets.some((n) => n.Name === base.Name))
        throw conflict(`network with name ${base.Name} already exists`);
      const theirs = nets.map((n) => parseCidr(n.IPAM.Config[0].Subnet!));
      let subnet: Cidr;
      if (entry.Subnet) {
        subnet = parseCidr(entry.Subnet, true);
        if ([...theirs, ...localTaken].some((o) => overlaps(o, subnet)))
          throw forbidden('invalid pool request: Pool overlaps with other one on this address space');
      } else {
        if (entry.Gateway || entry.IPRange) throw invalid('a gateway or IP range needs a subnet (--subnet)');
        const s = carveSubnet(CLUSTER_POOL, [...theirs, ...localTaken]);
        if (!s) throw forbidden('all predefined address pools have been fully subnetted');
        subnet = s;
      }
      const plan = planSubnet(formatCidr(subnet), entry.Gateway, entry.IPRange);
      const vnis = new Set(nets.map((n) => Number(n.Options[VNI_OPTION])));
      let vni = FIRST_VNI;
      while (vnis.has(vni)) vni++;
      const { ifname: _i, mtu: _m, predefined: _p, ...shared } = base;
      const net: NetworkRecord = {
        ...shared,
        Scope: 'global',
        Driver: 'overlay',
        IPAM: {
          Driver: 'default',
          Options: base.IPAM.Options ?? {},
          Config: [
            {
              Subnet: formatCidr(plan.subnet),
              Gateway: numToIp(plan.gateway),
              ...(entry.IPRange ? { IPRange: entry.IPRange } : {}),
            },
          ],
        },
        Options: { ...base.Options, [VNI_OPTION]: String(vni) },
      };
      const ok = await this.cluster.txn(
        [{ key: 'pool', mod: snap.mods.get('pool') ?? 0 }],
        [
          { put: 'pool', value: snap.revision },
          { put: netKey(net.Id), value: JSON.stringify(net) },
        ],
      );
      if (ok) return net;
    }
    throw unavailable('cannot create the network: other overlay networks kept changing in the cluster store');
  }

  /** Removes a network from the store, only while no host has an endpoint on it (one transaction). */
  async remove(net: NetworkRecord): Promise<void> {
    const snap = await this.read();
    if (!snap.kvs.has(netKey(net.Id))) return;
    const inUse = () =>
      forbidden(`error while removing network: network ${net.Name} id ${net.Id} has active endpoints`);
    if (clusterEndpoints(snap).some((e) => e.networkId === net.Id)) throw inUse();
    const ok = await this.cluster.txn(
      [{ key: netKey(net.Id), exists: true }, { emptyPrefix: epPrefix(net.Id) }],
      [{ del: netKey(net.Id) }],
    );
    if (!ok && (await this.read()).kvs.has(netKey(net.Id))) throw inUse();
  }

  // ---------------------------------------------------------------- endpoints

  /**
   * Takes the endpoint's address cluster-wide (create-if-absent on `endpoints/<net>/<ip>`, while
   * the network exists); returns the settings with that address fixed. A key this container still
   * holds (a restart while the previous release is on its way) is taken over, not refused.
   */
  async claim(net: NetworkRecord, record: ContainerRecord, cfg: EndpointSettings): Promise<EndpointSettings> {
    const lease = this.cluster.requireLease();
    const plan = planSubnet(
      net.IPAM.Config[0].Subnet!,
      net.IPAM.Config[0].Gateway,
      net.IPAM.Config[0].IPRange,
    );
    const fixed = cfg.IPAMConfig?.IPv4Address;
    for (let attempt = 0; attempt < 50; attempt++) {
      const snap = await this.read();
      if (!snap.kvs.has(netKey(net.Id))) throw notFound(`network ${net.Name} not found`);
      const ours = (e: ClusterEndpoint) =>
        e.engineId === this.cluster.engineId && e.containerId === record.Id;
      const taken = new Set(
        clusterEndpoints(snap)
          .filter((e) => e.networkId === net.Id && !ours(e))
          .map((e) => ipToNum(e.ip)),
      );
      const n = fixed ? checkFixedAddress(plan, fixed, taken) : allocateAddress(plan, taken);
      if (n === undefined)
        throw systemError(
          `no available IPv4 addresses on this network's address pools: ${net.Name} (${net.Id})`,
        );
      const ip = numToIp(n);
      const key = epKey(net.Id, ip);
      const held = snap.mods.get(key);
      const value: ClusterEndpoint = {
        host: this.cluster.addr,
        engineId: this.cluster.engineId,
        containerId: record.Id,
        networkId: net.Id,
        ip,
      };
      this.pending.add(key);
      const ok = await this.cluster
        .txn(
          [held ? { key, mod: held } : { key, exists: false }, { key: netKey(net.Id), exists: true }],
          [{ put: key, value: JSON.stringify(value), lease }],
        )
        .catch((err: unknown) => {
          this.pending.delete(key);
          throw err;
        });
      if (ok) return { ...cfg, IPAMConfig: { ...(cfg.IPAMConfig ?? {}), IPv4Address: ip } };
      this.pending.delete(key);
      // Lost a race: read again (a fixed address another host took is refused by checkFixedAddress).
    }
    throw unavailable(`cannot allocate an address on ${net.Name}: the cluster store kept changing`);
  }

  /** Completes claims with what peers need (MAC, DNS names) once the endpoints are plugged in. */
  async publish(eps: EndpointState[]): Promise<void> {
    const lease = this.cluster.requireLease();
    for (const ep of eps) {
      const key = epKey(ep.networkId, ep.ip);
      await this.cluster
        .txn([{ key, exists: true }], [{ put: key, value: JSON.stringify(this.valueOf(ep)), lease }])
        .finally(() => this.pending.delete(key));
    }
  }

  /** Gives an address back; on a store failure the key stays until the next sync or the lease's end. */
  release(ep: EndpointState): void {
    const key = epKey(ep.networkId, ep.ip);
    this.pending.delete(key);
    void this.deleteOwn(key, ep.containerId).catch((err: unknown) =>
      log.warn('cannot release an overlay address (removed later)', { key, err: (err as Error).message }),
    );
  }

  private async deleteOwn(key: string, containerId: string): Promise<void> {
    const cur = await this.cluster.snapshot();
    const v = cur.kvs.get(key);
    const e = v ? parse<ClusterEndpoint>(v) : undefined;
    if (!e || e.engineId !== this.cluster.engineId || e.containerId !== containerId) return;
    // Claimed again meanwhile (the container restarted): the key is in use once more.
    if (this.pending.has(key) || this.host.localEndpoints().some((l) => epKey(l.networkId, l.ip) === key))
      return;
    await this.cluster.txn([{ key, mod: cur.mods.get(key)! }], [{ del: key }]);
  }

  private valueOf(ep: EndpointState): ClusterEndpoint {
    return {
      host: this.cluster.addr,
      engineId: this.cluster.engineId,
      containerId: ep.containerId,
      networkId: ep.networkId,
      ip: ep.ip,
      mac: ep.mac,
      dnsNames: ep.dnsNames,
    };
  }

  /** After a (re)registration: this host's live endpoints go back into the store under the new lease. */
  private async republish(lease: string): Promise<void> {
    const snap = await this.cluster.snapshot();
    for (const ep of this.host.localEndpoints()) {
      const key = epKey(ep.networkId, ep.ip);
      const v = snap.kvs.get(key);
      const cur = v ? parse<ClusterEndpoint>(v) : undefined;
      if (cur && (cur.engineId !== this.cluster.engineId || cur.containerId !== ep.containerId)) {
        log.error('overlay address taken by another host while this one was away', { key, owner: cur.host });
        continue;
      }
      const ok = await this.cluster.txn(
        [cur ? { key, mod: snap.mods.get(key)! } : { key, exists: false }],
        [{ put: key, value: JSON.stringify(this.valueOf(ep)), lease }],
      );
      if (!ok) log.warn('cannot republish an overlay endpoint', { key });
    }
  }

  // ---------------------------------------------------------------- reconciliation

  private onSnapshot(snap: Snapshot): Promise<void> {
    const run = this.applying.then(async () => {
      if (Number(snap.revision) < this.appliedRevision) return;
      this.appliedRevision = Number(snap.revision);
      await this.apply(snap);
    });
    this.applying = run.catch((err: unknown) => log.warn('cannot apply the cluster state', { err }));
    return run;
  }

  private async apply(snap: Snapshot): Promise<void> {
    const nets = clusterNetworks(snap);
    await this.host.apply(nets);
    const eps = clusterEndpoints(snap);
    const me = this.cluster.engineId;
    const remote = eps.filter((e) => e.engineId !== me && e.mac);
    for (const n of nets) {
      const local = this.host.network(n.Id);
      if (!local) continue;
      const peers = remote
        .filter((e) => e.networkId === n.Id)
        .map((e) => ({ mac: e.mac!, ip: e.ip, host: e.host }));
      await this.driver
        .program(local, peers)
        .catch((err: unknown) =>
          log.warn('cannot program overlay peers', { network: n.Name, err: (err as Error).message }),
        );
    }
    this.remote = remote.map((e) => ({
      id: '', // no local endpoint: the resolver tells remote endpoints by this
      containerId: e.containerId,
      networkId: e.networkId,
      ifName: '',
      ip: e.ip,
      prefix: 0,
      gateway: '',
      mac: e.mac!,
      aliases: [],
      dnsNames: e.dnsNames ?? [],
    }));
    // Our own keys that no local endpoint owns (a release that failed while the store was away),
    // and claims whose publication failed: the store is made to match this host's endpoints.
    const mine = new Map(this.host.localEndpoints().map((e) => [epKey(e.networkId, e.ip), e]));
    const lease = this.cluster.leaseIfReady();
    for (const e of eps) {
      const key = epKey(e.networkId, e.ip);
      if (e.engineId !== me || this.pending.has(key)) continue;
      const local = mine.get(key);
      const cond = [{ key, mod: snap.mods.get(key)! }];
      if (!local) await this.cluster.txn(cond, [{ del: key }]).catch(() => {});
      else if (!e.mac && lease)
        await this.cluster
          .txn(cond, [{ put: key, value: JSON.stringify(this.valueOf(local)), lease }])
          .catch(() => {});
    }
  }
}
