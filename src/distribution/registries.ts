/**
 * Where berthd looks for a repository: dockerd's `registry-mirrors` and `insecure-registries`.
 * Names on Docker Hub (`nginx`, `library/nginx`, `docker.io/bob/app`) are pulled from the mirrors in
 * order (Docker Hub itself cannot be reached from here, so it is never tried); every other registry
 * is its own single endpoint, over plain HTTP when it is on loopback or marked insecure. Pushes
 * never go to a mirror.
 */
import { BlockList, isIP } from 'node:net';
import { BerthError, invalid } from '../util/errors.js';

export const DOCKER_HUB = 'docker.io';

export interface Endpoint {
  /** `scheme://host[:port]` requests go to. */
  base: URL;
  /** True for a mirror of Docker Hub. */
  mirror: boolean;
}

/** What `info` shows under `RegistryConfig` (Engine API's `ServiceConfig`). */
export interface RegistryInfo {
  InsecureRegistryCIDRs: string[];
  IndexConfigs: Record<string, { Name: string; Mirrors: string[]; Secure: boolean; Official: boolean }>;
  Mirrors: string[];
}

/** dockerd's mirror check: an http(s) URL with nothing after the host; returned with a trailing `/`. */
export function validateMirror(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw invalid(`invalid mirror: "${value}" is not a valid URI`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw invalid(`invalid mirror: unsupported scheme "${u.protocol.slice(0, -1)}" in "${value}"`);
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username)
    throw invalid(`invalid mirror: path, query, or fragment at end of the URI "${value}"`);
  return `${u.protocol}//${u.host}/`;
}

/** An insecure registry is `host[:port]` or a CIDR; a scheme given is dropped, as dockerd does. */
export function validateInsecureRegistry(value: string): string {
  const v = value.replace(/^https?:\/\//i, '').replace(/\/+$/, '');
  if (v === '' || v.includes('://')) throw invalid(`insecure registry ${value} is not valid`);
  if (v.includes('/')) {
    const [addr, bits] = v.split('/');
    const family = isIP(addr);
    const max = family === 6 ? 128 : 32;
    if (!family || !/^\d+$/.test(bits) || Number(bits) > max)
      throw invalid(`insecure registry ${value} is not a valid CIDR`);
  }
  return v;
}

const hostOnly = (hostPort: string) =>
  hostPort
    .replace(/^\[/, '')
    .replace(/\](:\d+)?$/, '')
    .replace(/^([^:]+):\d+$/, '$1');

export class RegistrySettings {
  readonly mirrors: string[];
  private readonly insecureNames = new Set<string>();
  private readonly cidrs: string[] = ['::1/128', '127.0.0.0/8'];
  private readonly blocks = new BlockList();

  constructor(opts: { mirrors: string[]; insecure: string[] }) {
    this.mirrors = [...new Set(opts.mirrors.map(validateMirror))];
    this.blocks.addSubnet('127.0.0.0', 8, 'ipv4');
    this.blocks.addSubnet('::1', 128, 'ipv6');
    for (const raw of opts.insecure) {
      const v = validateInsecureRegistry(raw);
      if (v.includes('/')) {
        const [addr, bits] = v.split('/');
        const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
        this.blocks.addSubnet(addr, Number(bits), type);
        if (!this.cidrs.includes(v)) this.cidrs.push(v);
      } else this.insecureNames.add(v);
    }
  }

  /** Plain HTTP for loopback, insecure names (with or without the port), and IPs in insecure CIDRs. */
  isInsecure(hostPort: string): boolean {
    const h = hostOnly(hostPort);
    if (h === 'localhost' || this.insecureNames.has(hostPort) || this.insecureNames.has(h)) return true;
    const family = isIP(h);
    return family !== 0 && this.blocks.check(h, family === 6 ? 'ipv6' : 'ipv4');
  }

  baseOf(hostPort: string): URL {
    return new URL(`${this.isInsecure(hostPort) ? 'http' : 'https'}://${hostPort}`);
  }

  /** Endpoints to pull `domain`'s repositories from, in the order to try them. */
  pullEndpoints(domain: string, shown: string): Endpoint[] {
    if (domain !== DOCKER_HUB) return [{ base: this.baseOf(domain), mirror: false }];
    if (this.mirrors.length === 0)
      throw new BerthError(
        'not-found',
        `pull access denied for ${shown}: Docker Hub cannot be reached from this machine; configure a registry mirror ("registry-mirrors" in daemon.json) or name a registry explicitly (e.g. 127.0.0.1:5000/${shown})`,
      );
    return this.mirrors.map((m) => ({ base: new URL(m), mirror: true }));
  }

  /** The one endpoint a push goes to: never a mirror. */
  pushEndpoint(domain: string, shown: string): Endpoint {
    if (domain === DOCKER_HUB)
      throw new BerthError(
        'not-found',
        `push access denied for ${shown}: Docker Hub cannot be reached from this machine (pushes never go to a registry mirror); tag the image for a registry first (e.g. 127.0.0.1:5000/${shown})`,
      );
    return { base: this.baseOf(domain), mirror: false };
  }

  info(): RegistryInfo {
    const IndexConfigs: RegistryInfo['IndexConfigs'] = {};
    for (const name of [...this.insecureNames].sort())
      IndexConfigs[name] = { Name: name, Mirrors: [], Secure: false, Official: false };
    IndexConfigs[DOCKER_HUB] = { Name: DOCKER_HUB, Mirrors: [...this.mirrors], Secure: true, Official: true };
    return { InsecureRegistryCIDRs: [...this.cidrs], IndexConfigs, Mirrors: [...this.mirrors] };
  }
}
