/**
 * berth-registry configuration: a JSON file (see docs/registry.md). With no file, the registry is
 * open (no auth), delete enabled, listening where `--listen` says, storing under `--root`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface RepositoryRule {
  /** Glob on the repository name: `*` within a component, `**` across; `${user}` = the caller. */
  match: string;
  pull?: string[];
  push?: string[];
  delete?: string[];
}

export interface AccessConfig {
  /** Users or `@groups` allowed everything, including writing `library/` and the catalog. */
  admins?: string[];
  groups?: Record<string, string[]>;
  /** First matching rule wins; principals: `*` anyone (also anonymous), `+` any signed-in user, `@group`, `user`. */
  repositories?: RepositoryRule[];
  /** Users own `<user>/…` (pull, push, delete). Default true. */
  userNamespaces?: boolean;
  /** `library/…` is pullable by anyone unless a rule says otherwise. Default true. */
  officialPublic?: boolean;
}

export interface AuthConfig {
  /** `basic`: HTTP Basic against htpasswd. `token`: Docker token auth (Basic also accepted). */
  type: 'basic' | 'token';
  htpasswd: string;
  realm?: string;
  token?: {
    /** Token endpoint URL announced in challenges; default `<scheme>://<Host>/token` of the request. */
    realm?: string;
    service?: string;
    issuer?: string;
    /** PEM (PKCS#8) EC P-256 private key; default: generated once under `<root>/auth/`. */
    key?: string;
    expiration?: number;
  };
}

export interface ProxyConfig {
  /** The upstream registry: `https://registry.example`, `http://127.0.0.1:5001`. */
  remoteurl: string;
  username?: string;
  password?: string;
  /** Seconds a cached tag is served before the upstream is asked again (0: every time). */
  ttl: number;
}

/** Go-style durations (`168h`, `30m`, `10s`, `1h30m`) or seconds as a number. */
export function parseTtl(v: unknown): number | undefined {
  if (typeof v === 'number' && v >= 0) return v;
  if (typeof v !== 'string' || v === '') return undefined;
  let total = 0;
  let rest = v;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(h|m|s|ms)/.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * { h: 3600, m: 60, s: 1, ms: 0.001 }[m[2] as 'h'];
    rest = rest.slice(m[0].length);
  }
  return total;
}

export interface RegistryConfig {
  listen: string;
  root: string;
  tls?: { certificate: string; key: string };
  delete: boolean;
  auth?: AuthConfig;
  access: AccessConfig;
  limits: {
    manifestBytes: number;
    /** Largest blob accepted (bytes); 0 = unlimited. */
    blobBytes: number;
    /** Largest body of other requests (token endpoint etc.). */
    requestBytes: number;
    /** Uploads untouched for this long are removed. */
    uploadTTLSeconds: number;
    /** Seconds an in-flight request may take to finish after a shutdown signal. */
    shutdownGraceSeconds: number;
    maxConnections: number;
  };
  log: { requests: boolean; level: 'debug' | 'info' | 'warn' | 'error' };
  /** Pull-through cache of another registry (see proxy.ts); pushes are refused then. */
  proxy?: ProxyConfig;
}

export const DEFAULT_LIMITS: RegistryConfig['limits'] = {
  manifestBytes: 4 * 1024 * 1024,
  blobBytes: 0,
  requestBytes: 64 * 1024,
  uploadTTLSeconds: 24 * 3600,
  shutdownGraceSeconds: 60,
  maxConnections: 0,
};

export function defaultConfig(listen = '127.0.0.1:5000', root = '/var/lib/berth-registry'): RegistryConfig {
  return {
    listen,
    root,
    delete: true,
    access: { userNamespaces: true },
    limits: { ...DEFAULT_LIMITS },
    log: { requests: true, level: 'info' },
  };
}

function fail(file: string, msg: string): never {
  throw new Error(`config ${file}: ${msg}`);
}

export async function loadConfig(
  file: string,
  overrides: { listen?: string; root?: string } = {},
): Promise<RegistryConfig> {
  let raw: Record<string, any>;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    fail(file, err instanceof Error ? err.message : String(err));
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, 'must be a JSON object');
  const known = new Set(['listen', 'root', 'tls', 'delete', 'auth', 'access', 'limits', 'log', 'proxy']);
  for (const k of Object.keys(raw)) if (!known.has(k)) fail(file, `unknown key "${k}"`);
  const dir = path.dirname(path.resolve(file));
  const rel = (p: string) => path.resolve(dir, p);
  const cfg = defaultConfig(
    overrides.listen ?? raw.listen,
    overrides.root ?? (raw.root ? rel(raw.root) : undefined),
  );
  if (raw.delete !== undefined) {
    if (typeof raw.delete !== 'boolean') fail(file, '"delete" must be true or false');
    cfg.delete = raw.delete;
  }
  if (raw.tls !== undefined) {
    if (typeof raw.tls?.certificate !== 'string' || typeof raw.tls?.key !== 'string') {
      fail(file, '"tls" needs "certificate" and "key" file paths');
    }
    cfg.tls = { certificate: rel(raw.tls.certificate), key: rel(raw.tls.key) };
  }
  if (raw.auth !== undefined) {
    const a = raw.auth;
    if (a.type !== 'basic' && a.type !== 'token') fail(file, '"auth.type" must be "basic" or "token"');
    if (typeof a.htpasswd !== 'string') fail(file, '"auth.htpasswd" (a bcrypt htpasswd file) is required');
    cfg.auth = {
      type: a.type,
      htpasswd: rel(a.htpasswd),
      realm: typeof a.realm === 'string' ? a.realm : undefined,
      token: a.token ? { ...a.token, key: a.token.key ? rel(a.token.key) : undefined } : undefined,
    };
  }
  if (raw.access !== undefined) {
    const acc = raw.access;
    if (acc.repositories !== undefined && !Array.isArray(acc.repositories))
      fail(file, '"access.repositories" must be a list');
    for (const r of acc.repositories ?? []) {
      if (typeof r?.match !== 'string') fail(file, 'every access.repositories entry needs "match"');
      for (const k of ['pull', 'push', 'delete']) {
        if (
          r[k] !== undefined &&
          (!Array.isArray(r[k]) || r[k].some((x: unknown) => typeof x !== 'string'))
        ) {
          fail(file, `access rule "${r.match}": "${k}" must be a list of names`);
        }
      }
    }
    cfg.access = { userNamespaces: true, ...acc };
  }
  if (raw.limits !== undefined) {
    for (const [k, v] of Object.entries(raw.limits)) {
      if (!(k in DEFAULT_LIMITS)) fail(file, `unknown limit "${k}"`);
      if (typeof v !== 'number' || v < 0) fail(file, `limit "${k}" must be a non-negative number`);
      (cfg.limits as Record<string, number>)[k] = v;
    }
  }
  if (raw.log !== undefined) cfg.log = { ...cfg.log, ...raw.log };
  if (raw.proxy !== undefined) {
    const p = raw.proxy;
    if (typeof p?.remoteurl !== 'string' || !/^https?:\/\/[^/]+\/?$/.test(p.remoteurl))
      fail(file, '"proxy.remoteurl" must be the upstream registry\'s http(s):// URL');
    for (const k of ['username', 'password'])
      if (p[k] !== undefined && typeof p[k] !== 'string') fail(file, `"proxy.${k}" must be a string`);
    // distribution's default: a week.
    const ttl = p.ttl === undefined ? 168 * 3600 : parseTtl(p.ttl);
    if (ttl === undefined) fail(file, '"proxy.ttl" must be seconds or a duration such as "168h"');
    cfg.proxy = { remoteurl: p.remoteurl, username: p.username, password: p.password, ttl };
  }
  return cfg;
}
