/**
 * dockerd's classic multi-host settings: `--cluster-store etcd://H1:2379[,H2:2379]`,
 * `--cluster-advertise IP|IFACE[:PORT]` and `--cluster-store-opt KEY=VALUE` (TLS files for etcd,
 * the registration TTL). Pure parsing: the advertised interface is resolved by the caller's
 * `interfaces` (os.networkInterfaces() in the daemon's own network namespace).
 */
import { invalid } from '../util/errors.js';

export interface ClusterSettings {
  /** As given, for `info`. */
  store: string;
  /** etcd client URLs (http:// or https://). */
  endpoints: string[];
  /** The underlay address other hosts send VXLAN traffic to. */
  advertiseAddr: string;
  /** As given, for `info`. */
  advertise: string;
  /** Seconds a host's registration (and its endpoints) outlive its last keep-alive. */
  ttl: number;
  tls?: { ca: string; cert?: string; key?: string };
}

type Interfaces = Record<
  string,
  { family: string | number; address: string; internal: boolean }[] | undefined
>;

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseStoreUrl(url: string, tls: boolean): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(url.trim());
  if (!m) throw invalid(`unsupported cluster store ${url}: only etcd://HOST:PORT[,HOST:PORT…] is supported`);
  const hosts = m[1].replace(/\/.*$/, '').split(',').filter(Boolean);
  if (hosts.length === 0) throw invalid(`cluster store ${url} names no host`);
  return hosts.map((h) => {
    if (!/^[A-Za-z0-9.\-[\]:]+$/.test(h)) throw invalid(`invalid cluster store host: ${h}`);
    return `${tls ? 'https' : 'http'}://${/:\d+$/.test(h) ? h : `${h}:2379`}`;
  });
}

/** `IP`, `IFACE`, `IP:PORT` or `IFACE:PORT` → the IPv4 address (the port is the API's; unused here). */
export function resolveAdvertise(spec: string, interfaces: Interfaces): string {
  const host = spec.trim().replace(/:\d+$/, '');
  if (IPV4.test(host)) {
    if (host.split('.').some((p) => Number(p) > 255))
      throw invalid(`invalid cluster advertise address: ${spec}`);
    return host;
  }
  const addrs = interfaces[host];
  if (!addrs) throw invalid(`invalid cluster advertise: no interface named ${host}`);
  const v4 =
    addrs.find((a) => (a.family === 'IPv4' || a.family === 4) && !a.internal) ??
    addrs.find((a) => a.family === 'IPv4' || a.family === 4);
  if (!v4) throw invalid(`invalid cluster advertise: interface ${host} has no IPv4 address`);
  return v4.address;
}

/** `--cluster-store-opt` keys: kv.cacertfile, kv.certfile, kv.keyfile (TLS), discovery.ttl (seconds). */
export function parseStoreOpts(opts: Record<string, string>): Pick<ClusterSettings, 'ttl' | 'tls'> {
  const out: Pick<ClusterSettings, 'ttl' | 'tls'> = { ttl: 10 };
  for (const [k, v] of Object.entries(opts)) {
    switch (k) {
      case 'discovery.ttl': {
        const n = Number(v.replace(/s$/, ''));
        if (!Number.isInteger(n) || n < 2 || n > 3600)
          throw invalid(`invalid discovery.ttl: ${v} (whole seconds, 2 to 3600)`);
        out.ttl = n;
        break;
      }
      case 'kv.cacertfile':
        out.tls = { ...(out.tls ?? { ca: '' }), ca: v };
        break;
      case 'kv.certfile':
        out.tls = { ...(out.tls ?? { ca: '' }), cert: v };
        break;
      case 'kv.keyfile':
        out.tls = { ...(out.tls ?? { ca: '' }), key: v };
        break;
      default:
        throw invalid(`unknown cluster store option: ${k}`);
    }
  }
  if (out.tls && !out.tls.ca) throw invalid('cluster store TLS needs kv.cacertfile');
  return out;
}

export function clusterSettings(
  store: string,
  advertise: string | undefined,
  opts: Record<string, string>,
  interfaces: Interfaces,
): ClusterSettings {
  if (!advertise) throw invalid('--cluster-store needs --cluster-advertise (IP or interface of this host)');
  const o = parseStoreOpts(opts);
  return {
    store,
    endpoints: parseStoreUrl(store, !!o.tls),
    advertise,
    advertiseAddr: resolveAdvertise(advertise, interfaces),
    ...o,
  };
}
