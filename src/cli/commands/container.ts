/** Container commands that do not stream stdio: ps, inspect, rm, stop, kill, logs, top, cp, … */
import { createWriteStream, existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { ApiError, readAll } from '../../client/client.js';
import { Demuxer } from '../../client/demux.js';
import { type Cli, errorMessage, forEach, StatusError } from '../cli.js';
import { renderRows, row } from '../formatter.js';
import { familiarString, parseRef } from '../reference.js';
import { tabwrite } from '../tabwriter.js';
import { Template, TemplateError } from '../template.js';
import { ellipsis, goTimeString, humanDuration, humanSize, parseTimestamp, truncateId } from '../units.js';
import { goQuote } from '../template.js';
import { readConfig } from './pull.js';

/** `--filter a=b --filter c` → `{"a":{"b":true}}` as the API takes it. */
export function filtersJson(list: string[] | undefined): string | undefined {
  if (!list?.length) return undefined;
  const f: Record<string, Record<string, boolean>> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i < 0) throw new StatusError(125, `bad format of filter (expected name=value)`);
    const k = item.slice(0, i).trim().toLowerCase();
    f[k] = { ...(f[k] ?? {}), [item.slice(i + 1)]: true };
  }
  return JSON.stringify(f);
}

interface PortSummary {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

function joinHostPort(ip: string, port: string | number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** formatter.DisplayablePorts. */
export function displayablePorts(ports: PortSummary[] | null | undefined): string {
  const list = [...(ports ?? [])].sort((a, b) => {
    if (a.PrivatePort !== b.PrivatePort) return a.PrivatePort - b.PrivatePort;
    if ((a.IP ?? '') !== (b.IP ?? '')) return (a.IP ?? '') < (b.IP ?? '') ? -1 : 1;
    if ((a.PublicPort ?? 0) !== (b.PublicPort ?? 0)) return (a.PublicPort ?? 0) - (b.PublicPort ?? 0);
    return a.Type < b.Type ? -1 : a.Type > b.Type ? 1 : 0;
  });
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const hostMappings: string[] = [];
  const formGroup = (key: string, start: number, last: number) => {
    const parts = key.split('/');
    let type = parts[0]!;
    let ip = '';
    if (parts.length > 1) {
      ip = parts[0]!;
      type = parts[1]!;
    }
    let g = String(start);
    if (start !== last) g = `${g}-${last}`;
    if (ip) g = `${joinHostPort(ip, g)}->${g}`;
    return `${g}/${type}`;
  };
  for (const p of list) {
    const current = p.PrivatePort;
    let key = p.Type;
    if (p.IP) {
      if (p.PublicPort !== current) {
        hostMappings.push(`${joinHostPort(p.IP, p.PublicPort ?? 0)}->${p.PrivatePort}/${p.Type}`);
        continue;
      }
      key = `${p.IP}/${p.Type}`;
    }
    const g = groups.get(key);
    if (!g) {
      groups.set(key, { first: current, last: current });
      continue;
    }
    if (current === g.last + 1) {
      g.last = current;
      continue;
    }
    result.push(formGroup(key, g.first, g.last));
    groups.set(key, { first: current, last: current });
  }
  for (const [k, g] of groups) result.push(formGroup(k, g.first, g.last));
  return [...result, ...hostMappings].join(', ');
}

const PS_HEADER: Record<string, any> = {
  Label: (name: string) => name,
  ID: 'CONTAINER ID',
  Names: 'NAMES',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  LocalVolumes: 'LOCAL VOLUMES',
  Networks: 'NETWORKS',
  Platform: 'PLATFORM',
};

function imageColumn(c: any, trunc: boolean): string {
  const image: string = c.Image ?? '';
  if (!image) return '<no image>';
  if (!trunc) return image;
  if (truncateId(c.ImageID ?? '') === truncateId(image)) return truncateId(image);
  try {
    const r = parseRef(image);
    return familiarString({ ...r, digest: undefined });
  } catch {
    return image;
  }
}

function containerRow(c: any, trunc: boolean): object {
  const labels: Record<string, string> = c.Labels ?? {};
  const names: string[] = (c.Names ?? []).map((n: string) => n.replace(/^\//, ''));
  const nets = Object.keys(c.NetworkSettings?.Networks ?? {}).sort();
  return row({
    ID: trunc ? truncateId(c.Id) : c.Id,
    Names: trunc ? (names.find((n) => !n.includes('/')) ?? '') : names.join(','),
    Image: imageColumn(c, trunc),
    Command: goQuote(trunc ? ellipsis(c.Command ?? '', 20) : (c.Command ?? '')),
    CreatedAt: goTimeString(c.Created),
    RunningFor: `${humanDuration(Date.now() - c.Created * 1000)} ago`,
    Ports: displayablePorts(c.Ports),
    State: c.State ?? '',
    Status: c.Status ?? '',
    Size:
      c.SizeRootFs > 0
        ? `${humanSize(c.SizeRw ?? 0, 3)} (virtual ${humanSize(c.SizeRootFs, 3)})`
        : humanSize(c.SizeRw ?? 0, 3),
    Labels: Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(','),
    Label: (name: string) => labels[name] ?? '',
    Mounts: (c.Mounts ?? [])
      .map((m: any) => (trunc ? ellipsis(m.Name || m.Source || '', 15) : m.Name || m.Source || ''))
      .join(','),
    LocalVolumes: String((c.Mounts ?? []).filter((m: any) => m.Driver === 'local').length),
    Networks: nets.join(','),
    Platform: c.ImageManifestDescriptor?.platform ?? null,
  });
}

export async function ps(cli: Cli, opts: Record<string, any>): Promise<void> {
  let format: string = opts.format ?? '';
  if (!format) format = readConfig(cli).psFormat ?? 'table';
  const quiet = !!opts.quiet;
  const custom = format !== 'table' && format !== '';
  let tmpl: string;
  if (quiet && (!custom || format === 'table')) tmpl = '{{.ID}}';
  else if (quiet) tmpl = '{{.ID}}';
  else if (format === 'table' || format === '')
    tmpl =
      'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}' +
      (opts.size ? '\t{{.Size}}' : '');
  else tmpl = format;
  const size = !!opts.size || (!quiet && tmpl.includes('.Size'));
  const last = opts.latest ? 1 : opts.last !== undefined ? Number(opts.last) : -1;
  const list = await cli.client.get<any[]>('/containers/json', {
    all: opts.all || last > 0 ? true : undefined,
    limit: last > 0 ? last : undefined,
    size: size || undefined,
    filters: filtersJson(opts.filter),
  });
  const rows = list.map((c) => containerRow(c, opts.trunc !== false));
  cli.out(renderRows(tmpl, rows, PS_HEADER));
}

type Kind = 'container' | 'image' | 'network' | 'volume';
const KIND_PATH: Record<Kind, (n: string) => string> = {
  container: (n) => `/containers/${n}/json`,
  image: (n) => `/images/${n}/json`,
  network: (n) => `/networks/${n}`,
  volume: (n) => `/volumes/${n}`,
};

/** Prints inspect results: indented JSON array, or one template line per object. */
export async function inspectObjects(
  cli: Cli,
  refs: string[],
  format: string | undefined,
  get: (ref: string) => Promise<unknown>,
): Promise<void> {
  let tmpl: Template | undefined;
  if (format && format !== 'json') {
    try {
      tmpl = new Template(format.replace(/\\t/g, '\t').replace(/\\n/g, '\n'));
    } catch (err) {
      throw new StatusError(64, `template parsing error: ${(err as Error).message}`);
    }
  }
  const found: unknown[] = [];
  const errs: string[] = [];
  let out = '';
  for (const ref of refs) {
    try {
      const v = await get(ref);
      if (tmpl) {
        try {
          out += tmpl.execute(v) + '\n';
        } catch (err) {
          if (err instanceof TemplateError) errs.push(`template parsing error: ${err.message}`);
          else throw err;
        }
      } else found.push(v);
    } catch (err) {
      if (err instanceof ApiError || err instanceof StatusError)
        errs.push(err instanceof ApiError ? errorMessage(err) : err.message);
      else throw err;
    }
  }
  if (tmpl) cli.out(out);
  else if (found.length === 0) cli.out('[]\n');
  else cli.out(JSON.stringify(found, null, 4) + '\n');
  if (errs.length) throw new StatusError(1, errs.join('\n'));
}

export async function inspect(cli: Cli, refs: string[], opts: Record<string, any>): Promise<void> {
  const type: string | undefined = opts.type;
  const kinds: Kind[] = type ? [type as Kind] : ['container', 'image', 'network', 'volume'];
  if (type && !(type in KIND_PATH)) throw new StatusError(1, `"${type}" is not a valid value for --type`);
  await inspectObjects(cli, refs, opts.format, async (ref) => {
    for (const k of kinds) {
      try {
        const q = k === 'container' && opts.size ? { size: true } : undefined;
        return await cli.client.get(KIND_PATH[k](ref), q);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404 || type) throw err;
      }
    }
    throw new StatusError(1, `Error: No such object: ${ref}`);
  });
}

export async function containerInspect(cli: Cli, refs: string[], opts: Record<string, any>): Promise<void> {
  await inspectObjects(cli, refs, opts.format, (ref) =>
    cli.client.get(`/containers/${ref}/json`, opts.size ? { size: true } : undefined),
  );
}

export async function rm(cli: Cli, names: string[], opts: Record<string, any>): Promise<void> {
  await forEach(cli, names, async (n) => {
    const name = n.replace(/^\//, '');
    await cli.client.status('DELETE', `/containers/${name}`, {
      query: { force: opts.force || undefined, v: opts.volumes || undefined, link: opts.link || undefined },
    });
    return n;
  });
}

export async function stop(
  cli: Cli,
  names: string[],
  opts: Record<string, any>,
  action = 'stop',
): Promise<void> {
  await forEach(cli, names, async (n) => {
    await cli.client.status('POST', `/containers/${n}/${action}`, {
      query: { signal: opts.signal, t: opts.timeout ?? opts.time },
    });
    return n;
  });
}

export function restart(cli: Cli, names: string[], opts: Record<string, any>): Promise<void> {
  return stop(cli, names, opts, 'restart');
}

export async function kill(cli: Cli, names: string[], opts: Record<string, any>): Promise<void> {
  await forEach(cli, names, async (n) => {
    await cli.client.status('POST', `/containers/${n}/kill`, { query: { signal: opts.signal } });
    return n;
  });
}

export async function pause(cli: Cli, names: string[]): Promise<void> {
  await forEach(cli, names, async (n) => {
    await cli.client.status('POST', `/containers/${n}/pause`);
    return n;
  });
}

export async function unpause(cli: Cli, names: string[]): Promise<void> {
  await forEach(cli, names, async (n) => {
    await cli.client.status('POST', `/containers/${n}/unpause`);
    return n;
  });
}

export async function rename(cli: Cli, oldName: string, newName: string): Promise<void> {
  if (!newName.trim() || !oldName.trim())
    throw new StatusError(1, 'Error: Neither old nor new names may be empty');
  try {
    await cli.client.status('POST', `/containers/${oldName}/rename`, { query: { name: newName } });
  } catch (err) {
    if (err instanceof ApiError)
      throw new StatusError(1, `${errorMessage(err)}\nError: failed to rename container named ${oldName}`);
    throw err;
  }
}

export async function port(cli: Cli, container: string, privatePort?: string): Promise<void> {
  const info = await cli.client.get(`/containers/${container}/json`);
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> =
    info.NetworkSettings?.Ports ?? {};
  const out: string[] = [];
  if (privatePort) {
    let [p, proto] = privatePort.split('/');
    proto ||= 'tcp';
    if (!/^\d+$/.test(p!)) throw new StatusError(1, `Error: invalid port (${p}): invalid syntax`);
    const key = `${p}/${proto}`;
    const b = ports[key];
    if (!b?.length) throw new StatusError(1, `Error: No public port '${key}' published for ${container}`);
    for (const x of b) out.push(joinHostPort(x.HostIp, x.HostPort));
    cli.out(out.join('\n') + '\n');
    return;
  }
  for (const [k, b] of Object.entries(ports))
    for (const x of b ?? []) out.push(`${k} -> ${joinHostPort(x.HostIp, x.HostPort)}`);
  out.sort();
  if (out.length) cli.out(out.join('\n') + '\n');
}

export async function diff(cli: Cli, container: string): Promise<void> {
  const changes =
    (await cli.client.get<{ Path: string; Kind: number }[] | null>(`/containers/${container}/changes`)) ?? [];
  let out = '';
  for (const c of changes) out += `${['C', 'A', 'D'][c.Kind] ?? '?'} ${c.Path}\n`;
  cli.out(out);
}

export async function top(cli: Cli, container: string, psArgs: string[]): Promise<void> {
  const r = await cli.client.get<{ Titles: string[]; Processes: string[][] }>(
    `/containers/${container}/top`,
    {
      ps_args: psArgs.length ? psArgs.join(' ') : undefined,
    },
  );
  let text = r.Titles.join('\t') + '\n';
  for (const p of r.Processes ?? []) text += p.join('\t') + '\n';
  cli.out(tabwrite(text, 20, 3));
}

export async function logs(cli: Cli, container: string, opts: Record<string, any>): Promise<void> {
  const info = await cli.client.get(`/containers/${container}/json`);
  const res = await cli.client.request('GET', `/containers/${info.Id}/logs`, {
    query: {
      stdout: true,
      stderr: true,
      follow: opts.follow || undefined,
      since: opts.since ? parseTimestamp(opts.since) : undefined,
      until: opts.until ? parseTimestamp(opts.until) : undefined,
      timestamps: opts.timestamps || undefined,
      details: opts.details || undefined,
      tail: opts.tail ?? 'all',
    },
  });
  const demux = info.Config?.Tty
    ? undefined
    : new Demuxer((t, p) => (t === 2 ? process.stderr : process.stdout).write(p));
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (demux) demux.push(chunk);
    else process.stdout.write(chunk);
  }
}

async function toOutput(res: Readable, output: string | undefined, what: string): Promise<void> {
  if (!output) {
    if (process.stdout.isTTY) {
      res.destroy();
      throw new StatusError(1, `cowardly refusing to save to a terminal. Use the -o flag or redirect`);
    }
    await (await import('node:stream/promises')).pipeline(res, process.stdout);
    return;
  }
  try {
    await (await import('node:stream/promises')).pipeline(res, createWriteStream(output));
  } catch (err) {
    throw new StatusError(1, `failed to ${what}: ${(err as Error).message}`);
  }
}

export async function exportContainer(cli: Cli, container: string, opts: Record<string, any>): Promise<void> {
  if (!opts.output && process.stdout.isTTY)
    throw new StatusError(1, 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const res = await cli.client.request('GET', `/containers/${container}/export`);
  await toOutput(res, opts.output, 'export container');
}

export async function commit(
  cli: Cli,
  container: string,
  repoTag: string | undefined,
  opts: Record<string, any>,
): Promise<void> {
  let repo: string | undefined;
  let tag: string | undefined;
  if (repoTag) {
    let r: ReturnType<typeof parseRef>;
    try {
      r = parseRef(repoTag);
    } catch (err) {
      throw new StatusError(1, (err as Error).message);
    }
    if (r.digest) throw new StatusError(1, 'refusing to create a tag with a digest reference');
    repo = `${r.domain}/${r.path}`;
    tag = r.tag;
  }
  const res = await cli.client.post<{ Id: string }>('/commit', {
    container,
    repo,
    tag,
    comment: opts.message,
    author: opts.author,
    changes: opts.change,
    pause: opts.pause === false ? false : undefined,
  });
  cli.out(res.Id + '\n');
}

export async function prune(cli: Cli, opts: Record<string, any>): Promise<void> {
  if (!opts.force && !(await confirm(cli, 'WARNING! This will remove all stopped containers.'))) return;
  const r = await cli.client.post<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>(
    '/containers/prune',
    { filters: filtersJson(opts.filter) },
  );
  let out = '';
  if (r.ContainersDeleted?.length)
    out += 'Deleted Containers:\n' + r.ContainersDeleted.map((x) => x + '\n').join('') + '\n';
  out += `Total reclaimed space: ${humanSize(r.SpaceReclaimed ?? 0)}\n`;
  cli.out(out);
}

/** docker's prompt: `Are you sure you want to continue? [y/N] `. */
export async function confirm(cli: Cli, warning: string): Promise<boolean> {
  cli.out(`${warning}\nAre you sure you want to continue? [y/N] `);
  const line = await new Promise<string>((resolve) => {
    let buf = '';
    const onData = (b: Buffer) => {
      buf += b.toString();
      if (buf.includes('\n')) done();
    };
    const done = () => {
      process.stdin.removeListener('data', onData);
      process.stdin.pause();
      resolve(buf.split('\n')[0]!.trim());
    };
    process.stdin.on('data', onData);
    process.stdin.once('end', done);
    process.stdin.resume();
  });
  return ['y', 'yes'].includes(line.toLowerCase());
}

// ---------- cp ----------

interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.') || arg === '-') return { path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

async function statContainerPath(cli: Cli, container: string, p: string): Promise<PathStat | undefined> {
  try {
    const res = await cli.client.request('HEAD', `/containers/${container}/archive`, { query: { path: p } });
    res.resume();
    const h = res.headers['x-docker-container-path-stat'];
    return h ? (JSON.parse(Buffer.from(String(h), 'base64').toString('utf8')) as PathStat) : undefined;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

const IS_DIR = 0x80000000;

async function runTar(args: string[], input?: Readable): Promise<{ stdout: Readable; done: Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const child = spawn('tar', args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  if (input) input.pipe(child.stdin!);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new StatusError(1, stderr.trim() || `tar exited with ${code}`)),
    );
  });
  return { stdout: child.stdout!, done };
}

function escapeRe(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|,]/g, '\\$&');
}

export async function cp(cli: Cli, src: string, dst: string, opts: Record<string, any>): Promise<void> {
  const s = splitCpArg(src);
  const d = splitCpArg(dst);
  if (s.container && d.container) throw new StatusError(1, 'copying between containers is not supported');
  if (!s.container && !d.container) throw new StatusError(1, 'must specify at least one container source');
  if (s.container) {
    // container → local
    const res = await cli.client.request('GET', `/containers/${s.container}/archive`, {
      query: { path: s.path },
    });
    if (d.path === '-') {
      await (await import('node:stream/promises')).pipeline(res, process.stdout);
      return;
    }
    const statHeader = res.headers['x-docker-container-path-stat'];
    const stat = statHeader
      ? (JSON.parse(Buffer.from(String(statHeader), 'base64').toString('utf8')) as PathStat)
      : undefined;
    const srcBase = stat?.name || path.basename(s.path.replace(/\/+$/, '')) || '/';
    const dest = path.resolve(d.path);
    let target: string;
    const args = ['-x', '-f', '-'];
    if (existsSync(dest) && statSync(dest).isDirectory()) {
      target = dest;
    } else {
      if (d.path.endsWith('/')) throw new StatusError(1, `destination directory "${d.path}" must exist`);
      target = path.dirname(dest);
      const newBase = path.basename(dest);
      if (newBase !== srcBase)
        args.push(`--transform=s,^${escapeRe(srcBase)}\\(/\\|$\\),${newBase.replace(/[\\,&]/g, '\\$&')}\\1,`);
    }
    if (!opts.archive) args.push('--no-same-owner');
    args.push('-C', target);
    const t = await runTar(args, res);
    await t.done;
    return;
  }
  // local → container
  const container = d.container!;
  const dstStat = await statContainerPath(cli, container, d.path);
  let body: Readable;
  let putPath = d.path;
  let wait: Promise<void> | undefined;
  if (s.path === '-') {
    body = process.stdin;
    if (!dstStat || !(dstStat.mode & IS_DIR))
      throw new StatusError(1, `destination "${container}:${d.path}" must be a directory`);
  } else {
    const local = path.resolve(s.path);
    if (!existsSync(local)) throw new StatusError(1, `lstat ${local}: no such file or directory`);
    const base = path.basename(local);
    const args = ['-c', '-f', '-', '-C', path.dirname(local)];
    if (!opts.archive) args.push('--owner=0', '--group=0', '--numeric-owner');
    if (opts.followLink) args.push('-h');
    let entryBase = base;
    if (s.path.endsWith('/.') && statSync(local).isDirectory()) {
      // copy the contents, not the directory
      args.splice(4, 1, local);
      entryBase = '.';
    }
    if (!dstStat || !(dstStat.mode & IS_DIR)) {
      if (!dstStat && d.path.endsWith('/'))
        throw new StatusError(
          1,
          `Error response from daemon: Could not find the file ${d.path} in container ${container}`,
        );
      const newBase = path.posix.basename(d.path);
      putPath = path.posix.dirname(d.path);
      if (entryBase === '.') {
        args.push(`--transform=s,^\\.,${newBase.replace(/[\\,&]/g, '\\$&')},`);
      } else if (newBase !== base)
        args.push(`--transform=s,^${escapeRe(base)}\\(/\\|$\\),${newBase.replace(/[\\,&]/g, '\\$&')}\\1,`);
    }
    args.push(entryBase);
    const t = await runTar(args);
    body = t.stdout;
    wait = t.done;
  }
  await cli.client.status('PUT', `/containers/${container}/archive`, {
    query: { path: putPath, noOverwriteDirNonDir: true, copyUIDGID: opts.archive || undefined },
    body,
    headers: { 'Content-Type': 'application/x-tar' },
  });
  await wait;
}

export async function readText(res: Readable): Promise<string> {
  return (await readAll(res)).toString('utf8');
}
