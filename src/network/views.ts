/** What inspect shows: a container's `NetworkSettings` and a network's view with its containers. */
import { createHash } from 'node:crypto';
import type { ContainerRecord, EndpointSettings } from '../model/container.js';
import { netnsPath } from './host.js';
import type { NetworkView } from './index.js';
import { portsView } from './ports.js';
import type { NetworkStore } from './store.js';
import type { EndpointState, NetworkRecord, SandboxState } from './types.js';

export type NetworkSettings = ContainerRecord['NetworkSettings'];

/** A container's endpoint on one network; without `ep`, the configured endpoint of a stopped container. */
export function endpointView(
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

/** Settings before any endpoint exists (no namespace, host or none mode). */
export function emptySettings(): NetworkSettings {
  return { Bridge: '', SandboxID: '', SandboxKey: '', HairpinMode: false, Ports: {}, Networks: {} };
}

/** The settings of a running container from its sandbox and endpoints. */
export function settingsFor(store: NetworkStore, record: ContainerRecord, sb: SandboxState): NetworkSettings {
  const eps = store
    .endpointsOf(record.Id)
    .sort((a, b) => a.ifName.localeCompare(b.ifName, 'en', { numeric: true }));
  const cfgs = record.NetworkingConfig?.EndpointsConfig ?? {};
  const networks: Record<string, EndpointSettings> = {};
  for (const ep of eps) {
    const net = store.byId(ep.networkId)!;
    const cfg = cfgs[net.Name] ?? cfgs[net.Id] ?? (net.Name === 'bridge' ? cfgs.default : undefined) ?? {};
    networks[net.Name] = endpointView(net, ep, cfg);
  }
  const bridgeEp = eps.find((e) => store.byId(e.networkId)?.Name === 'bridge');
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

/** What inspect shows of a container that is not running: its networks, no addresses or ports (as Docker). */
export function clearSettings(record: ContainerRecord): void {
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

/** A network as `GET /networks/{id}` shows it. */
export function networkView(
  store: NetworkStore,
  net: NetworkRecord,
  nameOf: (id: string) => string,
): NetworkView {
  const { ifname: _i, mtu: _m, predefined: _p, ...rest } = net;
  const containers: NetworkView['Containers'] = {};
  for (const ep of store.state.endpoints.filter((e) => e.networkId === net.Id)) {
    containers[ep.containerId] = {
      Name: nameOf(ep.containerId),
      EndpointID: ep.id,
      MacAddress: ep.mac,
      IPv4Address: `${ep.ip}/${ep.prefix}`,
      IPv6Address: '',
    };
  }
  return { ...rest, Containers: containers };
}
