/**
 * The `local` volume driver: a directory `<dataRoot>/volumes/<name>/_data` per volume, or, with
 * driver options, a filesystem mounted there while containers use it (`type=tmpfs device=tmpfs
 * o=size=64m`, `type=none o=bind device=/srv/x`, any `type` mount(8) knows). Options follow moby's
 * `volume/local` rules and words; `opts.json` is written in moby's format.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errnoCode, invalid, systemError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { sweepDiscarded, writeJsonAtomic } from '../util/fsx.js';
import { validateLocalName } from './specs.js';

const VALID_OPTS = new Set(['type', 'o', 'device', 'size']);
const MANDATORY: Record<string, string[]> = { device: ['type'], type: ['device'], o: ['device', 'type'] };

export interface LocalOpts {
  MountType: string;
  MountOpts: string;
  MountDevice: string;
}

export function validateLocalOpts(opts: Record<string, string>): void {
  for (const k of Object.keys(opts)) if (!VALID_OPTS.has(k)) throw invalid(`invalid option: "${k}"`);
  if ('size' in opts) throw invalid('quota size requested but no quota support');
  for (const [k, req] of Object.entries(MANDATORY)) {
    if (!(k in opts)) continue;
    for (const r of req) if (!(r in opts)) throw invalid(`missing required option: "${r}"`);
  }
}

/** Mount points currently in the host's mount table (`/proc/self/mountinfo`, unescaped). */
export function mountedPaths(): Set<string> {
  const out = new Set<string>();
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4)
      out.add(f[4].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return out;
}

export class LocalDriver {
  constructor(readonly root: string) {}

  async init(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o701 });
    await sweepDiscarded(this.root);
  }

  dir(name: string): string {
    return path.join(this.root, name);
  }

  dataPath(name: string): string {
    return path.join(this.root, name, '_data');
  }

  /** Names of volume directories on disk (for start-up reconciliation). */
  async names(): Promise<string[]> {
    try {
      return (await fs.readdir(this.root, { withFileTypes: true }))
        .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
        .map((d) => d.name);
    } catch {
      return [];
    }
  }

  validate(name: string, opts: Record<string, string>): void {
    validateLocalName(name);
    validateLocalOpts(opts);
  }

  async create(name: string, opts: Record<string, string>): Promise<void> {
    this.validate(name, opts);
    await fs.mkdir(this.dir(name), { recursive: true, mode: 0o701 });
    await fs.mkdir(this.dataPath(name), { recursive: true, mode: 0o755 });
    if (Object.keys(opts).length > 0) {
      const o: LocalOpts = {
        MountType: opts.type ?? '',
        MountOpts: opts.o ?? '',
        MountDevice: opts.device ?? '',
      };
      await writeJsonAtomic(path.join(this.dir(name), 'opts.json'), o);
    }
  }

  async opts(name: string): Promise<LocalOpts | undefined> {
    try {
      const o = JSON.parse(await fs.readFile(path.join(this.dir(name), 'opts.json'), 'utf8')) as LocalOpts;
      return o.MountType || o.MountDevice ? o : undefined;
    } catch {
      return undefined;
    }
  }

  isMounted(name: string): boolean {
    return mountedPaths().has(this.dataPath(name));
  }

  /** Mounts the volume's filesystem when it has options and is not mounted yet; returns the data path. */
  async mount(name: string): Promise<string> {
    const p = this.dataPath(name);
    await fs.mkdir(p, { recursive: true, mode: 0o755 });
    const o = await this.opts(name);
    if (o && !this.isMounted(name)) {
      if (!o.MountDevice) throw systemError('missing device in volume options');
      const args = ['-t', o.MountType || 'none'];
      if (o.MountOpts) args.push('-o', o.MountOpts);
      args.push(o.MountDevice, p);
      try {
        await run('mount', args);
      } catch (err) {
        const pw = /password=([^,]*)/.exec(o.MountOpts)?.[1];
        let msg = (err as Error).message;
        if (pw) msg = msg.split(`password=${pw}`).join('password=********');
        throw systemError(`failed to mount local volume: ${msg}`);
      }
    }
    return p;
  }

  /** Unmounts the volume's filesystem if it has options and is mounted. */
  async unmount(name: string): Promise<void> {
    if (!(await this.opts(name))) return;
    if (!this.isMounted(name)) return;
    const r = await run('umount', [this.dataPath(name)], { allowFail: true });
    if (r.code !== 0 && this.isMounted(name)) throw systemError(`unmount volume ${name}: ${r.stderr.trim()}`);
  }

  async remove(name: string): Promise<void> {
    await this.unmount(name);
    const dir = this.dir(name);
    const real = await fs
      .realpath(dir)
      .catch((e) => (errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
    if (!real) return;
    if (real === this.root || !real.startsWith(this.root + path.sep))
      throw systemError(
        `unable to remove a directory outside of the local volume root ${this.root}: ${real}`,
      );
    // A bind (`o=bind`) or tmpfs still mounted would make rm delete its content: never rm through a mount.
    if (this.isMounted(name)) throw systemError(`volume ${name} is still mounted at ${this.dataPath(name)}`);
    // Renamed away first (one atomic step), deleted after: a crash mid-way never leaves a volume
    // with half its files; the trash is swept at the next start (init).
    const trash = path.join(this.root, `.discarded-${name}-${randomBytes(4).toString('hex')}`);
    await fs.rename(dir, trash);
    await fs.rm(trash, { recursive: true, force: true });
  }

  /** Bytes of data in the volume (sum of file sizes, hard links once, as Docker's `directory.Size`). */
  async size(name: string): Promise<number> {
    return dirSize(this.dataPath(name));
  }
}

export async function dirSize(root: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        await walk(p);
        continue;
      }
      const st = await fs.lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += st.size;
    }
  };
  await walk(root);
  return total;
}
