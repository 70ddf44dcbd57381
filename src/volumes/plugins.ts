/**
 * Out-of-process volume drivers over Docker's (legacy) plugin protocol: HTTP POST with JSON over a
 * unix socket (or TCP), `Plugin.Activate` then `VolumeDriver.*` (moby `pkg/plugins`,
 * `daemon/volume/drivers/proxy.go`). Discovery as Docker does it: `<name>.sock` or
 * `<name>/<name>.sock` in `/run/docker/plugins`, `<name>.spec` (a URL) or `<name>.json`
 * (`{"Addr": …}`) in `/etc/docker/plugins` and `/usr/lib/docker/plugins`, plus daemon-configured
 * directories (`--plugin-dir`, `plugin-dirs`), which may hold either kind.
 */
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { BerthError, errnoCode, notFound, systemError } from '../util/errors.js';

export const PLUGIN_MIME = 'application/vnd.docker.plugins.v1.2+json';
export const SOCKET_DIRS = ['/run/docker/plugins'];
export const SPEC_DIRS = ['/etc/docker/plugins', '/usr/lib/docker/plugins'];

export interface PluginAddress {
  name: string;
  /** `unix:///path.sock` or `tcp://host:port` / `http://host:port`. */
  addr: string;
}

async function isSocket(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isSocket();
  } catch {
    return false;
  }
}

async function readSpec(file: string): Promise<string | undefined> {
  try {
    const text = await fs.readFile(file, 'utf8');
    if (file.endsWith('.json')) {
      const j = JSON.parse(text) as { Addr?: string };
      return j.Addr || undefined;
    }
    const addr = text.trim();
    return /^[a-z]+:\/\//.test(addr) ? addr : undefined;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    return undefined;
  }
}

/** Finds a plugin by name; undefined when no socket or spec file names it. */
export async function discoverPlugin(
  name: string,
  extraDirs: string[] = [],
): Promise<PluginAddress | undefined> {
  if (!name || name.includes('/') || name === '.' || name === '..') return undefined;
  for (const dir of [...SOCKET_DIRS, ...extraDirs]) {
    for (const p of [path.join(dir, `${name}.sock`), path.join(dir, name, `${name}.sock`)])
      if (await isSocket(p)) return { name, addr: `unix://${p}` };
  }
  for (const dir of [...SPEC_DIRS, ...extraDirs]) {
    for (const ext of ['.spec', '.json']) {
      for (const p of [path.join(dir, name + ext), path.join(dir, name, name + ext)]) {
        const addr = await readSpec(p);
        if (addr) return { name, addr };
      }
    }
  }
  return undefined;
}

/** Names of every plugin found in the discovery directories (sockets and spec files). */
export async function scanPlugins(extraDirs: string[] = []): Promise<string[]> {
  const names = new Set<string>();
  const walk = async (dir: string, depth: number, accept: (n: string, full: string) => Promise<boolean>) => {
    let entries: string[];
    try {
      entries = await fs.readdir(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e);
      const st = await fs.stat(full).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) {
        if (depth < 1) await walk(full, depth + 1, accept);
        continue;
      }
      if (await accept(e, full)) names.add(e.replace(/\.[^.]*$/, ''));
    }
  };
  for (const dir of [...SOCKET_DIRS, ...extraDirs])
    await walk(dir, 0, async (e, full) => e.endsWith('.sock') && (await isSocket(full)));
  for (const dir of [...SPEC_DIRS, ...extraDirs])
    await walk(dir, 0, async (e) => e.endsWith('.spec') || e.endsWith('.json'));
  return [...names].sort();
}

export interface PluginVolume {
  Name: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Status?: Record<string, unknown>;
}

/** One plugin's HTTP client. Every method throws a BerthError carrying the plugin's `Err`. */
export class PluginClient {
  private activated?: Promise<string[]>;

  constructor(readonly address: PluginAddress) {}

  get name(): string {
    return this.address.name;
  }

  /** Low-level call: POST /<method> with a JSON body; returns the parsed JSON answer. */
  call<T extends { Err?: string }>(method: string, body: unknown, timeoutMs = 60_000): Promise<T> {
    const addr = this.address.addr;
    const payload = JSON.stringify(body ?? {});
    const target: http.RequestOptions = { method: 'POST', path: `/${method}` };
    if (addr.startsWith('unix://')) target.socketPath = addr.slice('unix://'.length);
    else {
      const u = new URL(addr.replace(/^tcp:/, 'http:'));
      target.host = u.hostname;
      target.port = u.port;
    }
    target.headers = {
      Accept: PLUGIN_MIME,
      'Content-Type': PLUGIN_MIME,
      'Content-Length': Buffer.byteLength(payload),
    };
    return new Promise<T>((resolve, reject) => {
      const req = http.request(target, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(systemError(`${method}: ${e.message}`, e)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: (T & { Err?: string }) | undefined;
          try {
            parsed = text.trim() ? (JSON.parse(text) as T) : ({} as T);
          } catch {
            parsed = undefined;
          }
          if ((res.statusCode ?? 500) !== 200) {
            const msg = parsed?.Err || text.trim() || `status ${res.statusCode}`;
            return reject(systemError(msg));
          }
          if (!parsed)
            return reject(
              systemError(`${method}: invalid JSON from plugin ${this.name}: ${text.slice(0, 200)}`),
            );
          if (parsed.Err) return reject(systemError(parsed.Err));
          resolve(parsed);
        });
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      req.on('error', (e) =>
        reject(
          new BerthError('system', `error while calling plugin ${this.name} (${method}): ${e.message}`, e),
        ),
      );
      req.end(payload);
    });
  }

  /** `Plugin.Activate` once (again after a failure); the plugin must implement VolumeDriver. */
  activate(): Promise<string[]> {
    if (!this.activated) {
      this.activated = this.call<{ Implements?: string[]; Err?: string }>('Plugin.Activate', {}, 15_000).then(
        (r) => {
          const impl = r.Implements ?? [];
          if (!impl.includes('VolumeDriver'))
            throw notFound(`plugin "${this.name}" does not implement VolumeDriver`);
          return impl;
        },
      );
      this.activated.catch(() => {
        this.activated = undefined;
      });
    }
    return this.activated;
  }

  private async v<T extends { Err?: string }>(method: string, body: unknown, timeoutMs = 60_000): Promise<T> {
    await this.activate();
    return this.call<T>(`VolumeDriver.${method}`, body, timeoutMs);
  }

  async create(name: string, opts: Record<string, string>): Promise<void> {
    await this.v('Create', { Name: name, Opts: opts }, 120_000);
  }
  async remove(name: string): Promise<void> {
    await this.v('Remove', { Name: name });
  }
  async mount(name: string, id: string): Promise<string> {
    const r = await this.v<{ Mountpoint?: string; Err?: string }>('Mount', { Name: name, ID: id }, 120_000);
    if (!r.Mountpoint) throw systemError(`plugin ${this.name} returned no mountpoint for volume ${name}`);
    return r.Mountpoint;
  }
  async unmount(name: string, id: string): Promise<void> {
    await this.v('Unmount', { Name: name, ID: id });
  }
  async path(name: string): Promise<string> {
    const r = await this.v<{ Mountpoint?: string; Err?: string }>('Path', { Name: name });
    return r.Mountpoint ?? '';
  }
  async get(name: string): Promise<PluginVolume> {
    const r = await this.v<{ Volume?: PluginVolume; Err?: string }>('Get', { Name: name });
    if (!r.Volume) throw notFound(`get ${name}: no such volume`);
    return r.Volume;
  }
  async list(): Promise<PluginVolume[]> {
    const r = await this.v<{ Volumes?: PluginVolume[]; Err?: string }>('List', {});
    return r.Volumes ?? [];
  }
  async capabilities(): Promise<{ Scope?: string }> {
    try {
      const r = await this.v<{ Capabilities?: { Scope?: string }; Err?: string }>('Capabilities', {});
      return r.Capabilities ?? {};
    } catch {
      // Old plugins lack Capabilities; Docker defaults to local scope.
      return { Scope: 'local' };
    }
  }
}

/** Caches one client per plugin name; rediscovers when a name is not known yet. */
export class PluginRegistry {
  private clients = new Map<string, PluginClient>();

  constructor(private readonly extraDirs: string[]) {}

  async get(name: string): Promise<PluginClient> {
    const addr = await discoverPlugin(name, this.extraDirs);
    if (!addr) {
      this.clients.delete(name);
      throw notFound(`error looking up volume plugin ${name}: plugin "${name}" not found`);
    }
    const known = this.clients.get(name);
    if (known && known.address.addr === addr.addr) return known;
    const c = new PluginClient(addr);
    this.clients.set(name, c);
    return c;
  }

  scan(): Promise<string[]> {
    return scanPlugins(this.extraDirs);
  }
}
