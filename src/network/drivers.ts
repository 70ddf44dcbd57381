/**
 * Network drivers: the per-kind work of making a network's host objects and plugging an endpoint
 * into a container's namespace. A join is expressed as `ip` command lines (host side, then inside
 * the namespace) so that the service runs a whole container's plumbing in two processes.
 * A multi-host driver (overlay: a VXLAN link per network, peers learned from a control plane)
 * fits the same shape: `up` makes the VXLAN device and bridge, `join` a veth into it.
 */
import { invalid, notFound } from '../util/errors.js';
import { ipBatch, linkExists, setSysctl } from './host.js';
import { macFor, numToIp, type SubnetPlan } from './ipam.js';
import type { DriverName, EndpointState, NetworkRecord } from './types.js';

export interface JoinPlan {
  host: string[];
  ns: string[];
}

export interface NetworkDriver {
  readonly name: DriverName;
  /** True when the host has an address on the network (gateway: NAT, published ports, DNS). */
  readonly routed: boolean;
  /** Checks driver options at `network create` (nothing is made). */
  validate(net: NetworkRecord): Promise<void>;
  /** Makes the network's host objects; idempotent (also run at daemon start). */
  up(net: NetworkRecord, plan: SubnetPlan): Promise<void>;
  /** Removes the network's host objects. */
  down(net: NetworkRecord): Promise<void>;
  /** Commands that plug the endpoint into namespace `netns`. */
  join(net: NetworkRecord, ep: EndpointState, netns: string, defaultRoute: boolean): JoinPlan;
  /** Commands that unplug it (run with -force; the namespace's removal does the same). */
  leave(net: NetworkRecord, ep: EndpointState, netns: string): JoinPlan;
}

export const MTU_OPTION = 'com.docker.network.driver.mtu';
export const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';

export function mtuOf(net: NetworkRecord): number {
  const v = net.Options[MTU_OPTION];
  if (!v) return 1500;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 68 || n > 65535) throw invalid(`invalid MTU: ${v}`);
  return n;
}

function nsAddressLines(ep: EndpointState, mtu: number, defaultRoute: boolean): string[] {
  const lines = [
    `link set dev ${ep.ifName} address ${ep.mac} mtu ${mtu}`,
    `addr add ${ep.ip}/${ep.prefix} dev ${ep.ifName}`,
    `link set dev ${ep.ifName} up`,
  ];
  if (defaultRoute && ep.gateway) lines.push(`route add default via ${ep.gateway} dev ${ep.ifName}`);
  return lines;
}

export class BridgeDriver implements NetworkDriver {
  readonly name = 'bridge' as const;
  readonly routed = true;

  async validate(net: NetworkRecord): Promise<void> {
    mtuOf(net);
    const br = net.ifname ?? '';
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(br)) throw invalid(`invalid bridge name: ${br}`);
  }

  async up(net: NetworkRecord, plan: SubnetPlan): Promise<void> {
    const br = net.ifname!;
    const mtu = mtuOf(net);
    const lines: string[] = [];
    if (!(await linkExists(br))) lines.push(`link add name ${br} mtu ${mtu} type bridge`);
    // A fixed MAC: otherwise the bridge takes the lowest MAC of its ports and changes it when a
    // port joins, and containers keep sending to the gateway's old MAC until ARP notices.
    lines.push(`link set dev ${br} address ${macFor(plan.gateway)}`);
    lines.push(`addr replace ${numToIp(plan.gateway)}/${plan.subnet.prefix} dev ${br}`);
    lines.push(`link set dev ${br} up`);
    await ipBatch(lines);
    // Published ports on loopback are DNATed to the container: the kernel must accept a
    // 127.0.0.0/8 source routed out of this bridge (then masqueraded).
    await setSysctl(`net.ipv4.conf.${br}.route_localnet`, '1');
  }

  async down(net: NetworkRecord): Promise<void> {
    if (net.ifname) await ipBatch([`link del dev ${net.ifname}`], undefined, true);
  }

  join(net: NetworkRecord, ep: EndpointState, netns: string, defaultRoute: boolean): JoinPlan {
    const mtu = mtuOf(net);
    return {
      host: [
        `link add name ${ep.hostIf} mtu ${mtu} type veth peer name ${ep.ifName} netns ${netns}`,
        `link set dev ${ep.hostIf} master ${net.ifname} up`,
        // A container reaching its own published port through a host address: the packet leaves
        // and re-enters the same bridge port.
        `link set dev ${ep.hostIf} type bridge_slave hairpin on`,
      ],
      ns: nsAddressLines(ep, mtu, defaultRoute),
    };
  }

  leave(_net: NetworkRecord, ep: EndpointState): JoinPlan {
    return { host: ep.hostIf ? [`link del dev ${ep.hostIf}`] : [], ns: [] };
  }
}

export class MacvlanDriver implements NetworkDriver {
  readonly name = 'macvlan' as const;
  readonly routed = false;

  async validate(net: NetworkRecord): Promise<void> {
    mtuOf(net);
    const parent = net.Options.parent;
    if (!parent) throw invalid('macvlan networks need a parent link: -o parent=IFACE');
    const mode = net.Options.macvlan_mode ?? 'bridge';
    if (!['bridge', 'private', 'vepa', 'passthru'].includes(mode))
      throw invalid(`unknown macvlan mode: ${mode}`);
    if (!(await linkExists(parent)))
      throw notFound(`-o parent interface was not found on the host: ${parent}`);
  }

  async up(net: NetworkRecord): Promise<void> {
    await ipBatch([`link set dev ${net.Options.parent} up`]);
  }

  async down(): Promise<void> {}

  join(net: NetworkRecord, ep: EndpointState, netns: string, defaultRoute: boolean): JoinPlan {
    const mode = net.Options.macvlan_mode ?? 'bridge';
    return {
      host: [
        `link add link ${net.Options.parent} name ${ep.ifName} netns ${netns} type macvlan mode ${mode}`,
      ],
      ns: nsAddressLines(ep, mtuOf(net), defaultRoute),
    };
  }

  leave(_net: NetworkRecord, ep: EndpointState): JoinPlan {
    return { host: [], ns: [`link del dev ${ep.ifName}`] };
  }
}
