/**
 * A container's filesystem as seen from inside it, without entering its namespaces: the rootfs
 * with the container's bind mounts and volumes laid over it at their destinations. Paths are
 * resolved one component at a time, symlinks evaluated relative to the container's root (never
 * the host's), `..` never climbing above `/`, and a component that is a mount destination
 * continuing in the mount's source. This is what `docker cp` and copy-up use.
 */
import { constants as C, promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as posix from 'node:path/posix';
import { errnoCode, invalid } from '../util/errors.js';

export interface ViewMount {
  /** Absolute, clean path inside the container. */
  destination: string;
  /** Host path mounted there (a directory or a file). */
  source: string;
  rw: boolean;
}

export interface Located {
  /** Clean absolute path inside the container. */
  container: string;
  /** The host path that holds it. */
  host: string;
  /** Whether writes there are allowed (the mount's `rw`, or the rootfs unless read-only). */
  rw: boolean;
  /** The container path is exactly a mount destination. */
  isMountPoint: boolean;
  /** The trusted host directory (rootfs or mount source) the path lies in, and the path below it. */
  base: string;
  rel: string;
}

const MAX_LINKS = 255;

export class ContainerView {
  private readonly mounts: ViewMount[];

  constructor(
    readonly rootfs: string,
    mounts: ViewMount[],
    readonly readonlyRoot = false,
  ) {
    // Longest destination first, so the deepest mount wins.
    this.mounts = mounts
      .map((m) => ({ ...m, destination: posix.normalize(m.destination) }))
      .sort((a, b) => b.destination.length - a.destination.length);
  }

  /** Maps a clean container path to its host path, without following anything. */
  locate(containerPath: string): Located {
    const p = posix.normalize(posix.join('/', containerPath));
    for (const m of this.mounts) {
      if (p === m.destination)
        return { container: p, host: m.source, rw: m.rw, isMountPoint: true, base: m.source, rel: '' };
      if (p.startsWith(m.destination === '/' ? '/' : `${m.destination}/`)) {
        const rel = p.slice(m.destination.length).replace(/^\/+/, '');
        return {
          container: p,
          host: posix.join(m.source, rel),
          rw: m.rw,
          isMountPoint: false,
          base: m.source,
          rel,
        };
      }
    }
    const rel = p.replace(/^\/+/, '');
    return {
      container: p,
      host: posix.join(this.rootfs, rel),
      rw: !this.readonlyRoot,
      isMountPoint: false,
      base: this.rootfs,
      rel,
    };
  }

  /** Mount destinations directly below a container directory (they may not exist in the rootfs yet). */
  mountsBelow(dir: string): string[] {
    const d = posix.normalize(dir);
    return this.mounts
      .filter((m) => m.destination !== d && posix.dirname(m.destination) === d)
      .map((m) => posix.basename(m.destination));
  }

  private async lstatAt(loc: Located): Promise<Stats | undefined> {
    try {
      // A mount's source is what the runtime mounted: follow it on the host, as mount(2) did.
      return loc.isMountPoint ? await fs.stat(loc.host) : await fs.lstat(loc.host);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  /**
   * Resolves `p` inside the container. Every symlink on the way is followed within the
   * container's root; the last component too when `followLast`. Missing components are kept
   * as they are (the result may not exist).
   */
  async resolve(p: string, followLast: boolean): Promise<Located> {
    let done = '/';
    const todo = p.split('/');
    let links = 0;
    while (todo.length > 0) {
      const c = todo.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        done = posix.dirname(done);
        continue;
      }
      const next = posix.join(done, c);
      const isLast = todo.every((t) => t === '' || t === '.');
      if (isLast && !followLast) {
        done = next;
        break;
      }
      const loc = this.locate(next);
      const st = await this.lstatAt(loc);
      if (st?.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw invalid(`too many levels of symbolic links: ${p}`);
        const target = await fs.readlink(loc.host);
        if (target.startsWith('/')) done = '/';
        todo.unshift(...target.split('/'));
        continue;
      }
      done = next;
    }
    return this.locate(done);
  }

  /** lstat of a located path (stat for mount points); undefined when missing. */
  stat(loc: Located): Promise<Stats | undefined> {
    return this.lstatAt(loc);
  }
}

/** Go's `os.FileMode` bits, as `X-Docker-Container-Path-Stat` carries them. */
export function goFileMode(st: Stats): number {
  let m = st.mode & 0o777;
  if (st.mode & 0o4000) m |= 1 << 23; // setuid
  if (st.mode & 0o2000) m |= 1 << 22; // setgid
  if (st.mode & 0o1000) m |= 1 << 20; // sticky
  if (st.isDirectory()) m |= 1 << 31;
  else if (st.isSymbolicLink()) m |= 1 << 27;
  else if (st.isFIFO()) m |= 1 << 25;
  else if (st.isSocket()) m |= 1 << 24;
  else if (st.isCharacterDevice()) m |= (1 << 26) | (1 << 21);
  else if (st.isBlockDevice()) m |= 1 << 26;
  return m >>> 0;
}

/**
 * A path reached without following any symlink below its trusted base: the parent directory is
 * opened component by component with O_NOFOLLOW|O_DIRECTORY, each step relative to the previous
 * directory's descriptor (`/proc/<pid>/fd/<n>/<name>`, since Node has no openat). Operations then
 * use `path`, whose lookup starts at the opened parent, so a running container that swaps a
 * directory for a symlink between our resolution and our use makes the operation fail (ELOOP or
 * ENOTDIR) instead of reaching the host. Mount points themselves are trusted host paths.
 */
export interface Anchored {
  /** `/proc/<pid>/fd/<parent fd>/<name>`: usable by this process and by children (rm, mknod). */
  path: string;
  close(): Promise<void>;
}

const DIR_NOFOLLOW = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

export async function anchor(loc: Located): Promise<Anchored> {
  if (loc.isMountPoint || loc.rel === '') return { path: loc.host, close: async () => {} };
  const parts = loc.rel.split('/').filter((x) => x !== '' && x !== '.');
  const name = parts.pop()!;
  let dir: FileHandle = await fs.open(loc.base, C.O_RDONLY | C.O_DIRECTORY);
  try {
    for (const c of parts) {
      if (c === '..') throw invalid(`unexpected .. in ${loc.container}`);
      const next = await fs.open(`/proc/${process.pid}/fd/${dir.fd}/${c}`, DIR_NOFOLLOW);
      await dir.close();
      dir = next;
    }
  } catch (err) {
    await dir.close().catch(() => {});
    const code = errnoCode(err);
    if (code === 'ELOOP' || code === 'ENOTDIR')
      throw invalid(`${loc.container}: a path component changed to a non-directory while copying`);
    throw err;
  }
  const held = dir;
  return { path: `/proc/${process.pid}/fd/${held.fd}/${name}`, close: () => held.close() };
}

/** Runs `fn` on the anchored path of `loc` and releases the anchor. */
export async function withAnchor<T>(loc: Located, fn: (p: string) => Promise<T>): Promise<T> {
  const a = await anchor(loc);
  try {
    return await fn(a.path);
  } finally {
    await a.close();
  }
}

/** lstat through the anchor (stat for mount points); undefined when missing. */
export async function secureLstat(loc: Located): Promise<Stats | undefined> {
  try {
    return await withAnchor(loc, (p) => (loc.isMountPoint ? fs.stat(p) : fs.lstat(p)));
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
