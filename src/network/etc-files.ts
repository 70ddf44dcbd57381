/**
 * A container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`: composed here and written
 * here only. At start they are replaced by rename (regenerated at every start, so no fsync). While
 * the container runs they are bind-mounted into it, and a rename would not reach the mount (it
 * names the old inode): network connect/disconnect rewrite the hosts file in place, in one write
 * of the whole text.
 */
import { existsSync, promises as fs } from 'node:fs';
import type { ContainerRecord } from '../model/container.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import { replaceFile } from '../util/fsx.js';
import { shortId } from '../util/ids.js';
import { hostResolvConf, RESOLVER_ADDRESS } from './host.js';
import { numToIp } from './ipam.js';
import type { EmbeddedDns } from './resolver.js';
import type { NetworkStore } from './store.js';
import type { EndpointState, NetworkRecord } from './types.js';

const BASE_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::\tip6-localnet',
  'ff00::\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/** What the files of one start are made from. */
export interface EtcInputs {
  hostNetwork: boolean;
  /** Lines beyond localhost and the container's own names (`--add-host`, `--link`). */
  hosts: string[];
  /** The container's own addresses. */
  addresses: string[];
  resolvConf: string;
}

export class EtcFiles {
  constructor(
    private readonly store: NetworkStore,
    private readonly dns: EmbeddedDns,
    private readonly config: DaemonConfig,
    private readonly containers: { get(ref: string): ContainerRecord },
  ) {}

  /** Writes the three files of a container about to start (skipped for records without paths). */
  async write(c: ContainerRecord, inp: EtcInputs): Promise<void> {
    if (!c.HostsPath) return;
    const hostname = c.Config.Hostname;
    const fqdn = c.Config.Domainname ? `${hostname}.${c.Config.Domainname}` : hostname;
    const names = `${fqdn}${fqdn !== hostname ? ` ${hostname}` : ''}`;
    const own = inp.hostNetwork ? [] : inp.addresses.map((a) => `${a}\t${names}`);
    const hosts = [...BASE_HOSTS, ...inp.hosts, ...own];
    if (!inp.hostNetwork && own.length === 0) hosts.push(`127.0.0.1\t${hostname}`);
    await Promise.all([
      replaceFile(c.HostsPath, hosts.join('\n') + '\n'),
      replaceFile(c.HostnamePath, `${hostname}\n`),
      replaceFile(c.ResolvConfPath, inp.resolvConf),
    ]);
  }

  /** A running container's /etc/hosts gains its address on a network it joined (as Docker does). */
  async addAddress(c: ContainerRecord, ep: EndpointState): Promise<void> {
    await this.editHosts(c, (lines) => [...lines, `${ep.ip}\t${c.Config.Hostname || shortId(c.Id)}`]);
  }

  async removeAddress(c: ContainerRecord, ep: EndpointState): Promise<void> {
    await this.editHosts(c, (lines) =>
      lines.filter((l) => !l.startsWith(`${ep.ip}\t`) && !l.startsWith(`${ep.ip} `)),
    );
  }

  private async editHosts(c: ContainerRecord, edit: (lines: string[]) => string[]): Promise<void> {
    if (!c.HostsPath || !existsSync(c.HostsPath)) return;
    const lines = (await fs.readFile(c.HostsPath, 'utf8')).split('\n').filter((l) => l !== '');
    const text = edit(lines).join('\n') + '\n';
    // In place (see the header): one positioned write of the whole text, then the new length.
    const fh = await fs.open(c.HostsPath, 'r+');
    try {
      await fh.write(text, 0, 'utf8');
      await fh.truncate(Buffer.byteLength(text));
    } finally {
      await fh.close();
    }
  }

  /** `--add-host name:ip` lines; `host-gateway` is the default bridge's gateway. */
  extraHosts(c: ContainerRecord): string[] {
    const out: string[] = [];
    for (const h of c.HostConfig.ExtraHosts ?? []) {
      const i = h.search(/[:=]/);
      if (i <= 0) continue;
      const name = h.slice(0, i);
      let ip = h.slice(i + 1);
      if (ip === 'host-gateway') {
        const br = this.store.defaultBridge();
        ip = br ? numToIp(this.store.planOf(br).gateway) : '127.0.0.1';
      }
      out.push(`${ip}\t${name}`);
    }
    return out;
  }

  /** `--link name:alias` on the default bridge: the linked container's address in /etc/hosts. */
  linkHosts(c: ContainerRecord): string[] {
    const out: string[] = [];
    for (const link of c.HostConfig.Links ?? []) {
      const [target, aliasPath] = link.split(':');
      try {
        const t = this.containers.get(target);
        const ep = this.store.state.endpoints.find((e) => e.containerId === t.Id);
        if (!ep) continue;
        const alias = (aliasPath ?? target).split('/').pop()!;
        const tname = t.Name.replace(/^\//, '');
        out.push(`${ep.ip}\t${[...new Set([alias, tname, shortId(t.Id)])].join(' ')}`);
      } catch {}
    }
    return out;
  }

  /** resolv.conf: the embedded DNS on user networks, else --dns, daemon dns, or the host's. */
  async resolvConf(c: ContainerRecord, primary: NetworkRecord | undefined, routed: boolean): Promise<string> {
    const hc = c.HostConfig;
    const host = await hostResolvConf();
    const search = hc.DnsSearch?.length ? hc.DnsSearch : host.search;
    const options = hc.DnsOptions?.length ? hc.DnsOptions : host.options;
    const embedded = primary && routed && this.dns.serves(primary.Id);
    let servers: string[];
    if (embedded && !primary.predefined) {
      // Docker's resolver address, redirected to this network's embedded DNS in the namespace.
      servers = [RESOLVER_ADDRESS];
    } else if (hc.Dns?.length) {
      servers = hc.Dns;
    } else if (this.config.dns.length) {
      servers = this.config.dns;
    } else if (primary?.Driver === 'host') {
      servers = host.nameservers;
    } else if (!this.config.dnsForward && embedded) {
      // No forwarding to upstreams: the default bridge's resolver (which refuses) is all there is.
      servers = [numToIp(this.store.planOf(primary).gateway)];
    } else {
      servers = host.nameservers.filter((s) => !s.startsWith('127.') && s !== '::1');
      if (servers.length === 0) servers = ['8.8.8.8', '8.8.4.4'];
    }
    const lines = servers.map((s) => `nameserver ${s}`);
    if (search.length) lines.push(`search ${search.join(' ')}`);
    if (options.length) lines.push(`options ${options.join(' ')}`);
    return lines.join('\n') + '\n';
  }
}
