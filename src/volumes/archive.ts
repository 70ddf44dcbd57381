/**
 * `docker cp` on the daemon side: stat a path, read a path as a tar, extract a tar into a
 * directory, all inside a ContainerView (rootfs + mounts), so that a symlink in the container can
 * never lead a read or a write onto the host. Semantics and words follow moby
 * `daemon/archive*.go` and `pkg/archive` (rebased entry names, noOverwriteDirNonDir, breakout
 * checks on `..` names and on link targets).
 */
import { constants as C, promises as fs, type Stats } from 'node:fs';
import * as posix from 'node:path/posix';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { once } from 'node:events';
import * as tar from 'tar-stream';
import { type BerthError, errnoCode, forbidden, invalid, notFound } from '../util/errors.js';
import { run } from '../util/exec.js';
import { anchor, type ContainerView, goFileMode, type Located, secureLstat, withAnchor } from './scope.js';

export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

function fileNotFound(p: string, container: string): BerthError {
  return notFound(`Could not find the file ${p} in container ${container}`);
}

/** Docker keeps a trailing `/` or `/.` meaningful: the last component is then followed. */
function followsLast(p: string): boolean {
  return p.endsWith('/') || p.endsWith('/.') || p === '.';
}

function absContainerPath(p: string): string {
  const abs = posix.join('/', p);
  if (p.endsWith('/.') && !abs.endsWith('/.')) return abs === '/' ? '/.' : `${abs}/.`;
  if (p.endsWith('/') && !abs.endsWith('/')) return `${abs}/`;
  return abs;
}

/** Stat as `HEAD /containers/{id}/archive` answers it (the last component is not followed). */
export async function statPath(
  view: ContainerView,
  p: string,
  containerName: string,
): Promise<{ stat: PathStat; loc: Located; st: Stats }> {
  const abs = absContainerPath(p);
  const loc = await view.resolve(abs, followsLast(abs));
  const st = await view.stat(loc);
  if (!st) throw fileNotFound(p, containerName);
  if ((abs.endsWith('/') || abs.endsWith('/.')) && !st.isDirectory())
    throw invalid(`lstat ${p}: not a directory`);
  let linkTarget = '';
  if (st.isSymbolicLink()) linkTarget = (await view.resolve(abs, true)).container;
  const base = posix.basename(abs.replace(/\/+$/, '')) || '/';
  const name = abs.endsWith('/.') ? '.' : base;
  return {
    stat: { name, size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget },
    loc,
    st,
  };
}

export function encodeStat(s: PathStat): string {
  return Buffer.from(JSON.stringify(s)).toString('base64');
}

function tarType(st: Stats): tar.Header['type'] {
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  if (st.isFIFO()) return 'fifo';
  return 'file';
}

/** The tar of `p` (`GET /containers/{id}/archive`): entries named after the path's base name. */
export async function readArchive(
  view: ContainerView,
  p: string,
  containerName: string,
): Promise<{ stat: PathStat; tar: Readable }> {
  const { stat, loc, st } = await statPath(view, p, containerName);
  const pack = tar.pack();
  const rebase = stat.name === '/' ? '.' : stat.name;
  const links = new Map<string, string>();

  const addEntry = async (loc: Located, name: string, s: Stats): Promise<void> => {
    if (s.isSocket()) return; // tar cannot carry sockets; Docker skips them too
    const header: Partial<tar.Header> & { name: string } = {
      name,
      mode: s.mode & 0o7777,
      uid: s.uid,
      gid: s.gid,
      mtime: s.mtime,
      type: tarType(s),
      size: 0,
    };
    if (s.isSymbolicLink()) header.linkname = await withAnchor(loc, (p) => fs.readlink(p));
    if (s.isCharacterDevice() || s.isBlockDevice()) {
      header.devmajor = Math.floor(s.rdev / 256) & 0xfff;
      header.devminor = (s.rdev & 0xff) | ((s.rdev >> 12) & 0xfff00);
    }
    if (s.isFile() && s.nlink > 1) {
      const key = `${s.dev}:${s.ino}`;
      const first = links.get(key);
      if (first) {
        header.type = 'link';
        header.linkname = first;
      } else links.set(key, name);
    }
    if (header.type === 'file') {
      const fh = await withAnchor(loc, (p) => fs.open(p, C.O_RDONLY | C.O_NOFOLLOW));
      try {
        const size = (await fh.stat()).size;
        header.size = size;
        const entry = pack.entry(header);
        const finished = new Promise<void>((resolve, reject) => {
          entry.on('finish', () => resolve());
          entry.on('error', reject);
        });
        let left = size;
        const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(1, size)));
        while (left > 0) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, left), size - left);
          if (bytesRead === 0) throw new Error(`${loc.container}: file shrank while reading`);
          left -= bytesRead;
          if (!entry.write(Buffer.from(buf.subarray(0, bytesRead))))
            await once(entry as unknown as NodeJS.EventEmitter, 'drain');
        }
        (entry as unknown as NodeJS.WritableStream).end();
        await finished;
      } finally {
        await fh.close();
      }
      return;
    }
    await new Promise<void>((resolve, reject) =>
      pack.entry(header, (err) => (err ? reject(err) : resolve())),
    );
    if (s.isDirectory()) {
      const names = new Set<string>();
      const dh = await withAnchor(loc, (p) =>
        fs.open(p, C.O_RDONLY | C.O_DIRECTORY | (loc.isMountPoint ? 0 : C.O_NOFOLLOW)),
      );
      try {
        for (const n of await fs.readdir(`/proc/${process.pid}/fd/${dh.fd}`)) names.add(n);
      } finally {
        await dh.close();
      }
      for (const n of view.mountsBelow(loc.container)) names.add(n);
      for (const n of [...names].sort()) {
        const childLoc = view.locate(posix.join(loc.container, n));
        const cs = await secureLstat(childLoc);
        if (cs) await addEntry(childLoc, `${name}/${n}`, cs);
      }
    }
  };

  void (async () => {
    try {
      await addEntry(loc, rebase, st);
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
  })();
  return { stat, tar: pack as unknown as Readable };
}

export interface ExtractOptions {
  noOverwriteDirNonDir: boolean;
  /** Ownership forced on every entry (`copyUIDGID`: the container's user); else the tar's. */
  chown?: { uid: number; gid: number };
  containerName: string;
}

function isWithin(parent: string, child: string): boolean {
  return child === parent || child.startsWith(parent === '/' ? '/' : `${parent}/`);
}

/** Peeks at the first bytes and gunzips when the body is gzip (Docker accepts compressed tars). */
function maybeGunzip(body: Readable): Readable {
  const out = new PassThrough();
  let decided = false;
  const onData = (chunk: Buffer) => {
    if (decided) return;
    decided = true;
    body.off('data', onData);
    body.pause();
    if (chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
      const gz = createGunzip();
      gz.on('error', (e) => out.destroy(e));
      gz.pipe(out);
      gz.write(chunk);
      body.pipe(gz);
    } else {
      out.write(chunk);
      body.pipe(out);
    }
    body.resume();
  };
  body.on('data', onData);
  body.on('end', () => {
    if (!decided) out.end();
  });
  body.on('error', (e) => out.destroy(e));
  return out;
}

/** Extracts a tar (`PUT /containers/{id}/archive`) into the container directory `p`. */
export async function extractArchive(
  view: ContainerView,
  p: string,
  body: Readable,
  opts: ExtractOptions,
): Promise<void> {
  const abs = posix.join('/', p);
  const dest = await view.resolve(abs, true);
  const dst = await view.stat(dest);
  if (!dst) throw fileNotFound(p, opts.containerName);
  if (!dst.isDirectory()) throw invalid('extraction point is not a directory');
  if (!dest.rw)
    throw forbidden(
      view.readonlyRoot && !dest.isMountPoint
        ? 'container rootfs is marked read-only'
        : 'mounted volume is marked read-only',
    );

  const dirTimes: { loc: Located; mtime: Date }[] = [];
  const extract = tar.extract();
  const source = maybeGunzip(body);
  const roError = (loc: Located) =>
    forbidden(
      view.readonlyRoot && !loc.isMountPoint && loc.base === view.rootfs
        ? 'container rootfs is marked read-only'
        : 'mounted volume is marked read-only',
    );

  const ensureDir = async (containerPath: string): Promise<Located> => {
    const loc = await view.resolve(containerPath, true);
    const st = await secureLstat(loc);
    if (st?.isDirectory()) return loc;
    if (st) throw invalid(`cannot create directory ${containerPath}: not a directory`);
    if (!isWithin(dest.container, loc.container)) throw invalid(`"${containerPath}" is outside of "${abs}"`);
    await ensureDir(posix.dirname(loc.container));
    if (!loc.rw) throw roError(loc);
    await withAnchor(loc, (q) => fs.mkdir(q, { mode: 0o755 })).catch((e) =>
      errnoCode(e) === 'EEXIST' ? undefined : Promise.reject(e),
    );
    return ensureDir(loc.container);
  };

  const handle = async (header: tar.Header, stream: Readable): Promise<void> => {
    const rel = posix.normalize(header.name.replace(/^\/+/, ''));
    if (rel === '..' || rel.startsWith('../')) throw invalid(`"${header.name}" is outside of "${abs}"`);
    if (rel === '.' || rel === '') {
      stream.resume();
      return;
    }
    const entryPath = posix.join(dest.container, rel);
    // Link targets are checked before anything is written, relative to the destination as
    // pkg/archive does on the host: a relative target that climbs above the destination is
    // refused even where the container's `/` would stop it.
    const climbs = (q: string) => q === '..' || q.startsWith('../');
    if (header.type === 'symlink') {
      const ln = header.linkname ?? '';
      if (!ln.startsWith('/') && climbs(posix.normalize(posix.join(posix.dirname(rel), ln))))
        throw invalid(`invalid symlink "${entryPath}" -> "${ln}"`);
    }
    let linkSource: Located | undefined;
    if (header.type === 'link') {
      const ln = posix.normalize((header.linkname ?? '').replace(/^\/+/, ''));
      if (climbs(ln)) throw invalid(`invalid hardlink "${entryPath}" -> "${header.linkname}"`);
      linkSource = await view.resolve(posix.join(dest.container, ln), false);
    }
    const parent = await ensureDir(posix.dirname(entryPath));
    const loc = view.locate(posix.join(parent.container, posix.basename(entryPath)));
    if (!loc.rw) throw roError(loc);
    const isDir = header.type === 'directory';
    const mode = (header.mode ?? 0o644) & 0o7777;
    const uid = opts.chown ? opts.chown.uid : (header.uid ?? 0);
    const gid = opts.chown ? opts.chown.gid : (header.gid ?? 0);
    const mtime = header.mtime ?? new Date();
    // Every operation below goes through the anchored parent: nothing follows a symlink that a
    // running container could plant between our checks and our writes.
    const a = await anchor(loc);
    try {
      const q = a.path;
      const existing = await (loc.isMountPoint ? fs.stat(q) : fs.lstat(q)).catch((e) =>
        errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e),
      );
      if (existing) {
        if (opts.noOverwriteDirNonDir && existing.isDirectory() && !isDir)
          throw invalid(`cannot overwrite directory "${loc.container}" with non-directory "${header.name}"`);
        if (opts.noOverwriteDirNonDir && !existing.isDirectory() && isDir)
          throw invalid(`cannot overwrite non-directory "${loc.container}" with directory "${header.name}"`);
        if (!(existing.isDirectory() && isDir)) {
          if (loc.isMountPoint) throw invalid(`cannot replace mount point ${loc.container}`);
          if (existing.isDirectory()) await run('rm', ['-rf', '--one-file-system', '--', q]);
          else await fs.unlink(q);
        }
      }
      switch (header.type) {
        case 'directory': {
          if (!existing?.isDirectory()) await fs.mkdir(q, { mode: 0o700 });
          const dh = await fs.open(q, C.O_RDONLY | C.O_DIRECTORY | (loc.isMountPoint ? 0 : C.O_NOFOLLOW));
          try {
            await dh.chown(uid, gid);
            await dh.chmod(mode);
          } finally {
            await dh.close();
          }
          dirTimes.push({ loc, mtime });
          stream.resume();
          break;
        }
        case 'file':
        case 'contiguous-file': {
          const fh = await fs.open(q, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
          try {
            for await (const chunk of stream) await fh.write(chunk as Buffer);
            await fh.chown(uid, gid);
            await fh.chmod(mode);
            await fh.utimes(mtime, mtime);
          } finally {
            await fh.close();
          }
          break;
        }
        case 'symlink':
          stream.resume();
          await fs.symlink(header.linkname ?? '', q);
          await fs.lchown(q, uid, gid);
          await fs.lutimes(q, mtime, mtime);
          break;
        case 'link':
          stream.resume();
          await withAnchor(linkSource!, (src) => fs.link(src, q));
          break;
        case 'character-device':
        case 'block-device':
        case 'fifo':
          stream.resume();
          if (header.type === 'fifo') await run('mkfifo', ['-m', mode.toString(8), q]);
          else
            await run('mknod', [
              '-m',
              mode.toString(8),
              q,
              header.type === 'block-device' ? 'b' : 'c',
              String(header.devmajor ?? 0),
              String(header.devminor ?? 0),
            ]);
          await fs.lchown(q, uid, gid);
          await fs.lutimes(q, mtime, mtime);
          break;
        default:
          // pax headers and GNU long names are consumed by tar-stream; anything else is skipped.
          stream.resume();
      }
    } finally {
      await a.close();
    }
  };

  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      source.unpipe(extract);
      source.resume();
      extract.destroy();
      reject(err);
    };
    extract.on('entry', (header, stream, next) => {
      handle(header, stream as unknown as Readable).then(
        () => next(),
        (err) => {
          stream.resume();
          fail(err);
        },
      );
    });
    extract.on('finish', () => {
      if (!failed) resolve();
    });
    extract.on('error', (e) => fail(invalid(`invalid tar: ${e.message}`)));
    source.on('error', (e) => fail(e));
    source.pipe(extract);
  });
  for (const d of dirTimes.reverse()) {
    await withAnchor(d.loc, async (q) => {
      const dh = await fs.open(q, C.O_RDONLY | C.O_DIRECTORY | (d.loc.isMountPoint ? 0 : C.O_NOFOLLOW));
      try {
        await dh.utimes(d.mtime, d.mtime);
      } finally {
        await dh.close();
      }
    }).catch(() => {});
  }
}
