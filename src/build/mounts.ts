/**
 * `RUN --mount=…` (BuildKit's Dockerfile syntax) on top of the container's own mounts:
 *
 *   type=cache   a directory the builder keeps across builds (`<dataRoot>/build/cache-mounts/`),
 *                keyed by `id` (default: the target); `builder prune` empties them
 *   type=tmpfs   a tmpfs (`size=` bytes)
 *   type=bind    a read-only view of a path of the context (default) or of a stage or image (`from=`)
 *   type=secret  a file given with `berth build --secret id=…,src=…`, bound read-only at
 *                `/run/secrets/<id>` (or `target=`); never in a layer, the history or the cache key
 *
 * None of them reaches the step's layer: the mount points a runtime had to create are removed
 * before the diff is taken (see `mountStubs`).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { invalid } from '../util/errors.js';
import { hashSources, selectSources } from './copy.js';

export interface MountRequest {
  type: 'cache' | 'tmpfs' | 'bind' | 'secret';
  target: string;
  options: Map<string, string>;
}

/** Parses one `--mount` value (`type=cache,target=/root/.cache,id=x`). */
export function parseMount(value: string, workdir: string): MountRequest {
  const options = new Map<string, string>();
  for (const part of value.split(',')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    options.set(k, eq < 0 ? 'true' : part.slice(eq + 1));
  }
  const type = (options.get('type') ?? 'bind') as MountRequest['type'];
  if (!['cache', 'tmpfs', 'bind', 'secret'].includes(type))
    throw invalid(`unsupported mount type "${type}" (cache, tmpfs, bind and secret are)`);
  let target = options.get('target') ?? options.get('dst') ?? options.get('destination');
  if (type === 'secret') {
    const id = options.get('id') ?? (target ? path.posix.basename(target) : undefined);
    if (!id) throw invalid('secret mount requires an id or a target');
    options.set('id', id);
    target ??= `/run/secrets/${id}`;
  }
  if (!target) throw invalid(`mount type=${type}: target is required`);
  return { type, target: path.posix.resolve(workdir || '/', target), options };
}

export interface MountContext {
  /** `<dataRoot>/build`: cache mounts live below it. */
  buildRoot: string;
  /** The build's private directory (secret files are written there). */
  work: string;
  contextRoot: string;
  secrets: Record<string, Buffer>;
  /** The filesystem root of a stage or image named by `from=` (kept mounted until `release`). */
  rootOf(ref: string): Promise<string>;
}

export interface PreparedMounts {
  binds: string[];
  tmpfs: Record<string, string>;
  /** What the step's cache key depends on (bind sources' content, cache ids; never secrets). */
  key: string;
}

export const cacheMountDir = (buildRoot: string, id: string) =>
  path.join(buildRoot, 'cache-mounts', createHash('sha256').update(id).digest('hex').slice(0, 32));

export async function prepareMounts(reqs: MountRequest[], ctx: MountContext): Promise<PreparedMounts> {
  const out: PreparedMounts = { binds: [], tmpfs: {}, key: '' };
  const keys: string[] = [];
  for (const m of reqs) {
    const o = m.options;
    switch (m.type) {
      case 'tmpfs': {
        const size = o.get('size');
        out.tmpfs[m.target] = size ? `size=${size}` : '';
        keys.push(`tmpfs:${m.target}:${size ?? ''}`);
        break;
      }
      case 'cache': {
        const id = o.get('id') ?? m.target;
        const dir = cacheMountDir(ctx.buildRoot, id);
        if (!(await fs.stat(dir).catch(() => undefined))) {
          await fs.mkdir(dir, { recursive: true });
          await fs.chmod(dir, Number.parseInt(o.get('mode') ?? '755', 8));
          await fs.chown(dir, Number(o.get('uid') ?? 0), Number(o.get('gid') ?? 0));
        }
        const ro = o.get('ro') === 'true' || o.get('readonly') === 'true';
        out.binds.push(`${dir}:${m.target}:${ro ? 'ro' : 'rw'}`);
        keys.push(`cache:${id}:${m.target}`);
        break;
      }
      case 'bind': {
        if (o.get('rw') === 'true' || o.get('readwrite') === 'true')
          throw invalid('bind mounts are read-only in this builder (rw is not supported)');
        const from = o.get('from');
        const root = from ? await ctx.rootOf(from) : ctx.contextRoot;
        const source = o.get('source') ?? o.get('src') ?? '.';
        const [src] = await selectSources(root, [source], 'RUN --mount');
        out.binds.push(`${src.host}:${m.target}:ro`);
        keys.push(`bind:${from ?? ''}:${source}:${m.target}:${await hashSources([src])}`);
        break;
      }
      case 'secret': {
        const id = o.get('id')!;
        const value = ctx.secrets[id];
        if (value === undefined) {
          if (o.get('required') === 'true') throw invalid(`secret ${id} not found`);
          break;
        }
        const dir = path.join(ctx.work, 'secrets');
        await fs.mkdir(dir, { recursive: true, mode: 0o700 });
        const file = path.join(dir, createHash('sha256').update(id).digest('hex').slice(0, 16));
        await fs.writeFile(file, value, { mode: 0o400 });
        out.binds.push(`${file}:${m.target}:ro`);
        keys.push(`secret:${id}:${m.target}`);
        break;
      }
    }
  }
  out.key = keys.join('\n');
  return out;
}

/**
 * The mount points the runtime created for these mounts (and their parents) that the image did
 * not have, deepest first: the caller removes them when they are empty, so the layer shows none.
 */
export function mountStubs(targets: string[], added: Set<string>): string[] {
  const stubs = new Set<string>();
  for (const t of targets) {
    for (let p = t; p !== '/' && added.has(p); p = path.posix.dirname(p)) stubs.add(p);
  }
  return [...stubs].sort((a, b) => b.length - a.length);
}
