/**
 * `berth build`: sends the context as a tar to `POST /build`, as the docker CLI's classic builder
 * does: `.dockerignore` applied on this side (the Dockerfile and `.dockerignore` always sent), a
 * Dockerfile outside the context added under a private name, the JSON stream rendered line by
 * line, a failing RUN's exit code as ours.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import * as dockerignore from '@balena/dockerignore';
import type { Ignore } from '@balena/dockerignore';
import tarStream from 'tar-stream';
import { type Cli, keyValues, StatusError } from '../cli.js';
import { type JsonMessage, ProgressRenderer, StreamError } from '../progress.js';
import { LiveBuildView } from '../build-live.js';
import { humanSize } from '../units.js';
import { readConfig } from './pull.js';

// A CommonJS module whose typings declare an ES default export: at run time the default is the factory.
const newIgnore = dockerignore.default as unknown as () => Ignore;

interface ContextFile {
  rel: string;
  host: string;
}

/** The files of a directory context that `.dockerignore` lets through, sorted. */
async function contextFiles(dir: string, keep: string[]): Promise<ContextFile[]> {
  const text = await fs.readFile(path.join(dir, '.dockerignore'), 'utf8').catch(() => '');
  const patterns = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const ig = patterns.length ? newIgnore().add(patterns) : undefined;
  const out: ContextFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const ignored = ig?.ignores(r) && !keep.includes(r);
      // A directory may be ignored while an exception keeps something below it.
      if (e.isDirectory()) {
        if (!ignored) out.push({ rel: r, host: path.join(dir, r) });
        await walk(r);
      } else if (!ignored) out.push({ rel: r, host: path.join(dir, r) });
    }
  };
  await walk('');
  return out;
}

/** Packs the files into a tar stream (owned by root, as the docker CLI sends them). */
function packContext(
  files: ContextFile[],
  extra?: { name: string; body: Buffer },
  ignoreText?: string,
): Readable {
  const p = tarStream.pack();
  const add = (header: Partial<tarStream.Header> & { name: string }, body: Buffer = Buffer.alloc(0)) =>
    new Promise<void>((resolve, reject) =>
      p.entry({ ...header, uid: 0, gid: 0 }, body, (err) => (err ? reject(err) : resolve())),
    );
  (async () => {
    for (const f of files) {
      if (f.rel === '.dockerignore' && ignoreText !== undefined) continue;
      const st = await fs.lstat(f.host);
      const base = { name: f.rel, mode: st.mode & 0o7777, mtime: st.mtime };
      if (st.isDirectory()) await add({ ...base, type: 'directory' });
      else if (st.isSymbolicLink())
        await add({ ...base, type: 'symlink', linkname: await fs.readlink(f.host) });
      else if (st.isFile()) {
        await new Promise<void>((resolve, reject) => {
          const sink = p.entry({ ...base, uid: 0, gid: 0, size: st.size, type: 'file' }, (err) =>
            err ? reject(err) : resolve(),
          );
          const src = createReadStream(f.host);
          src.on('error', reject);
          src.pipe(sink as unknown as NodeJS.WritableStream);
        });
      }
    }
    if (extra)
      await add({ name: extra.name, mode: 0o644, size: extra.body.length, mtime: new Date() }, extra.body);
    if (ignoreText !== undefined) {
      const body = Buffer.from(ignoreText);
      await add({ name: '.dockerignore', mode: 0o644, size: body.length, mtime: new Date() }, body);
    }
    p.finalize();
  })().catch((err: Error) => p.destroy(err));
  return p as unknown as Readable;
}

/** `--build-arg KEY=VALUE`, or a bare `KEY` taking its value from the environment (skipped when unset). */
function buildArgs(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i >= 0) out[item.slice(0, i)] = item.slice(i + 1);
    else if (process.env[item] !== undefined) out[item] = process.env[item]!;
  }
  return out;
}

/** `--secret id=x,src=file` or `id=x,env=VAR` (BuildKit's syntax) as the header berthd reads. */
async function secretsHeader(list: string[] | undefined): Promise<Record<string, string>> {
  if (!list?.length) return {};
  const out: Record<string, string> = {};
  for (const spec of list) {
    const o = new Map(
      spec
        .split(',')
        .map(
          (p) =>
            [p.slice(0, p.indexOf('=') < 0 ? p.length : p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as [
              string,
              string,
            ],
        ),
    );
    const id = o.get('id');
    if (!id) throw new StatusError(1, `invalid secret ${JSON.stringify(spec)}: id is required`);
    const src = o.get('src') ?? o.get('source');
    const env = o.get('env');
    let value: Buffer;
    if (src)
      value = await fs.readFile(src).catch(() => {
        throw new StatusError(1, `failed to read secret ${id}: open ${src}: no such file or directory`);
      });
    else if (env !== undefined || process.env[id] !== undefined)
      value = Buffer.from(process.env[env ?? id] ?? '');
    else throw new StatusError(1, `invalid secret ${JSON.stringify(spec)}: src or env is required`);
    out[id] = value.toString('base64');
  }
  return { 'X-Berth-Build-Secrets': Buffer.from(JSON.stringify(out)).toString('base64') };
}

/** `X-Registry-Config`: every registry's credentials from config.json, as the docker CLI sends them. */
function registryConfig(cli: Cli): string {
  const auths = (readConfig(cli).auths ?? {}) as Record<string, { auth?: string; identitytoken?: string }>;
  const out: Record<string, Record<string, string>> = {};
  for (const [host, entry] of Object.entries(auths)) {
    const key = host.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    const cfg: Record<string, string> = { serveraddress: host };
    if (entry.auth) {
      const dec = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = dec.indexOf(':');
      cfg.username = dec.slice(0, i);
      cfg.password = dec.slice(i + 1);
    }
    if (entry.identitytoken) cfg.identitytoken = entry.identitytoken;
    out[key] = cfg;
  }
  return Buffer.from(JSON.stringify(out)).toString('base64');
}

export async function build(cli: Cli, contextArg: string, opts: Record<string, any>): Promise<void> {
  if (opts.progress && !['auto', 'plain', 'tty'].includes(opts.progress))
    throw new StatusError(
      1,
      `invalid argument "${opts.progress}" for "--progress" flag: must be auto, plain or tty`,
    );
  let body: Readable;
  let dockerfile: string | undefined = opts.file;
  let size = 0;
  if (contextArg === '-') {
    body = process.stdin;
  } else {
    const dir = path.resolve(contextArg);
    const st = await fs.stat(dir).catch(() => undefined);
    if (!st?.isDirectory())
      throw new StatusError(1, `unable to prepare context: path "${contextArg}" not found`);
    const dfPath = path.resolve(opts.file ? opts.file : path.join(dir, 'Dockerfile'));
    const rel = path.relative(dir, dfPath);
    let extra: { name: string; body: Buffer } | undefined;
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      // A Dockerfile outside the context travels inside it under a private name.
      const bodyBytes = await fs.readFile(dfPath).catch(() => {
        throw new StatusError(
          1,
          `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${dfPath}: no such file or directory`,
        );
      });
      extra = { name: `.dockerfile.${randomBytes(10).toString('hex')}`, body: bodyBytes };
      dockerfile = extra.name;
    } else dockerfile = rel.split(path.sep).join('/');
    const files = await contextFiles(dir, [dockerfile, '.dockerignore']);
    for (const f of files) size += (await fs.lstat(f.host)).size;
    // As the docker CLI does: the daemon drops the added Dockerfile and .dockerignore from the context.
    const ignoreText = extra
      ? `${await fs.readFile(path.join(dir, '.dockerignore'), 'utf8').catch(() => '')}\n.dockerignore\n${extra.name}\n`
      : undefined;
    body = packContext(files, extra, ignoreText);
  }
  if (!opts.quiet) cli.out(`Sending build context to Docker daemon  ${humanSize(size)}\n\n`);
  const labels = keyValues(opts.label);
  const res = await cli.client.request('POST', '/build', {
    query: {
      t: opts.tag,
      dockerfile,
      buildargs: JSON.stringify(buildArgs(opts.buildArg)),
      labels: Object.keys(labels).length ? JSON.stringify(labels) : undefined,
      target: opts.target,
      nocache: opts.cache === false ? 1 : undefined,
      cachefrom: opts.cacheFrom?.length ? JSON.stringify(opts.cacheFrom) : undefined,
      q: opts.quiet ? 1 : undefined,
      networkmode: opts.network,
      pull: opts.pull ? 1 : undefined,
      rm: 1,
      version: '1',
    },
    body,
    headers: {
      'Content-Type': 'application/x-tar',
      'X-Registry-Config': registryConfig(cli),
      ...(await secretsHeader(opts.secret)),
    },
  });
  let imageId = '';
  let quietOut = '';
  const renderer = new ProgressRenderer(process.stdout, (aux) => {
    const id = (aux as { ID?: string }).ID;
    if (id) imageId = id;
  });
  // On a terminal (auto, tty): a RUN step's output in a window redrawn in place; else the plain lines.
  const live =
    !opts.quiet && process.stdout.isTTY && opts.progress !== 'plain'
      ? new LiveBuildView(process.stdout, () => process.stdout.columns ?? 80)
      : undefined;
  try {
    for await (const m of cli.client.jsonStream<JsonMessage>(res)) {
      const plainText = m.stream !== undefined && !m.error && !m.errorDetail;
      if (opts.quiet && plainText) {
        quietOut += m.stream;
        continue;
      }
      if (live && plainText) {
        live.write(m.stream!);
        continue;
      }
      if (live && m.aux === undefined) live.interrupt();
      if (live && (m.error || m.errorDetail)) live.finish(true);
      renderer.write(m);
    }
    live?.finish(false);
  } catch (err) {
    live?.finish(true);
    if (err instanceof StreamError)
      throw new StatusError(err.code && err.code > 0 ? err.code : 1, err.message);
    throw err;
  }
  if (opts.quiet) {
    cli.out(quietOut);
    imageId = quietOut.trim() || imageId;
  }
  if (opts.iidfile) {
    if (!imageId)
      throw new StatusError(1, `Server did not provide an image ID. Cannot write ${opts.iidfile}`);
    await new Promise<void>((resolve, reject) => {
      const w = createWriteStream(opts.iidfile);
      w.on('error', reject);
      w.end(imageId, resolve);
    });
  }
}
