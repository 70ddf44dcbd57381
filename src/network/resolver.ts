/**
 * The embedded DNS of routed networks: one server per network on its gateway address, answering
 * the names and aliases of the containers attached to it (as Docker's resolver does), and
 * forwarding other names upstream unless the daemon was told not to.
 */
import type { ContainerDirectory } from '../model/container-directory.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import { shortId } from '../util/ids.js';
import { log } from '../util/log.js';
import { DnsServer } from './dns.js';
import { numToIp } from './ipam.js';
import type { NetworkStore } from './store.js';
import type { NetworkRecord } from './types.js';

export interface Answer {
  addresses?: string[];
  ptr?: string;
  upstreams: string[];
}

export class EmbeddedDns {
  private readonly servers = new Map<string, DnsServer>();
  /** The host's resolvers, read at the first attach (upstreams when nothing else is configured). */
  hostNameservers: string[] = [];

  constructor(
    private readonly store: NetworkStore,
    private readonly config: DaemonConfig,
    private readonly containers: ContainerDirectory,
  ) {}

  serves(networkId: string): boolean {
    return this.servers.has(networkId);
  }

  async start(net: NetworkRecord): Promise<void> {
    if (this.servers.has(net.Id)) return;
    const gw = numToIp(this.store.planOf(net).gateway);
    const server = new DnsServer(gw, (name, client) => this.resolve(net.Id, name, client));
    try {
      await server.start();
      this.servers.set(net.Id, server);
    } catch (err) {
      log.warn('embedded DNS cannot listen', { network: net.Name, address: gw, err });
    }
  }

  async stop(networkId: string): Promise<void> {
    const s = this.servers.get(networkId);
    this.servers.delete(networkId);
    if (s) await s.close();
  }

  async close(): Promise<void> {
    for (const id of [...this.servers.keys()]) await this.stop(id);
  }

  /** A container's name without the leading '/', or its short ID once it is gone. */
  containerName(id: string): string {
    try {
      return this.containers.get(id).Name.replace(/^\//, '');
    } catch {
      return shortId(id);
    }
  }

  /** The embedded DNS's view of a network: names of the running containers attached to it. */
  resolve(networkId: string, name: string, client: string): Answer {
    const { networks } = this.store.state;
    // Containers of other hosts on overlay networks answer by name too.
    const endpoints = [...this.store.state.endpoints, ...this.store.remoteEndpoints()];
    const eps = endpoints.filter((e) => e.networkId === networkId);
    // As Docker's resolver: the names of every user-defined network the asking container is on,
    // the network the query arrived on first.
    const asking = eps.find((e) => e.ip === client)?.containerId;
    const netIds = [networkId];
    if (asking) {
      for (const e of endpoints)
        if (e.containerId === asking && !netIds.includes(e.networkId)) netIds.push(e.networkId);
    }
    const rev = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa$/.exec(name);
    if (rev) {
      const ip = [rev[4], rev[3], rev[2], rev[1]].join('.');
      for (const id of netIds) {
        const net = networks.find((n) => n.Id === id);
        const ep = endpoints.find((e) => e.networkId === id && e.ip === ip);
        if (net && !net.predefined && ep) {
          // A container of another host is known by the names it published.
          const name = ep.id
            ? this.containerName(ep.containerId)
            : (ep.dnsNames[0] ?? this.containerName(ep.containerId));
          return { ptr: `${name}.${net.Name}`, upstreams: [] };
        }
      }
    }
    let addresses: string[] | undefined;
    for (const id of netIds) {
      const net = networks.find((n) => n.Id === id);
      if (!net || net.predefined) continue;
      // `name` or `name.<network>` (Docker answers both).
      const suffix = `.${net.Name.toLowerCase()}`;
      const bare = name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
      const hit = endpoints.filter(
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
}
