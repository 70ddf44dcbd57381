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
import { type ContainerView, goFileMode, type Located } from './scope.js';

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

  const addEntry = async (containerPath: string, name: string, s: Stats, host: string): Promise<void> => {
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
    if (s.isSymbolicLink()) header.linkname = await fs.readlink(host);
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
      header.size = s.size;
      const fh = await fs.open(host, C.O_RDONLY | C.O_NOFOLLOW);
      try {
        let finished: Promise<void> = Promise.resolve();
        const entry = pack.entry(header);
        finished = new Promise<void>((resolve, reject) => {
          entry.on('finish', () => resolve());
          entry.on('error', reject);
        });
        let left = s.size;
        const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(1, s.size)));
        while (left > 0) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, left), s.size - left);
          if (bytesRead === 0) throw new Error(`${containerPath}: file shrank while reading`);
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
      for (const n of await fs.readdir(host).catch(() => [] as string[])) names.add(n);
      for (const n of view.mountsBelow(containerPath)) names.add(n);
      for (const n of [...names].sort()) {
        const childLoc = view.locate(posix.join(containerPath, n));
        const cs = await view.stat(childLoc);
        if (cs) await addEntry(childLoc.container, `${name}/${n}`, cs, childLoc.host);
      }
    }
  };

  void (async () => {
    try {
      await addEntry(loc.container, rebase, st, loc.host);
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

  const dirTimes: { host: string; mtime: Date }[] = [];
  const extract = tar.extract();
  const source = maybeGunzip(body);

  const ensureDir = async (containerPath: string): Promise<Located> => {
    const loc = await view.resolve(containerPath, true);
    const st = await view.stat(loc);
    if (st?.isDirectory()) return loc;
    if (st) throw invalid(`cannot create directory ${containerPath}: not a directory`);
    if (!isWithin(dest.container, loc.container)) throw invalid(`"${containerPath}" is outside of "${abs}"`);
    await ensureDir(posix.dirname(loc.container));
    if (!loc.rw) throw forbidden('mounted volume is marked read-only');
    await fs
      .mkdir(loc.host, { mode: 0o755 })
      .catch((e) => (errnoCode(e) === 'EEXIST' ? undefined : Promise.reject(e)));
    return ensureDir(loc.container);
  };

  const handle = async (header: tar.Header, stream: Readable): Promise<void> => {
    const rel = posix.normalize(header.name.replace(/^\/+/, ''));
    process.stderr.write(`DEBUG entry ${header.name} ${header.type}\n`);
    if (rel === '..' || rel.startsWith('../')) throw invalid(`"${header.name}" is outside of "${abs}"`);
    if (rel === '.' || rel === '') {
      stream.resume();
      return;
    }
    const entryPath = posix.join(dest.container, rel);
    // Link targets are checked before anything is written, as pkg/archive does.
    // Judged relative to the destination, as pkg/archive does on the host: a relative target
    // that climbs above the destination is refused even where the container's `/` would stop it.
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
    if (!isWithin(dest.container, parent.container) && !isWithin(dest.container, posix.dirname(entryPath)))
      throw invalid(`"${header.name}" is outside of "${abs}"`);
    const loc = view.locate(posix.join(parent.container, posix.basename(entryPath)));
    if (!loc.rw)
      throw forbidden(
        view.readonlyRoot && !loc.isMountPoint
          ? 'container rootfs is marked read-only'
          : 'mounted volume is marked read-only',
      );
    const existing = await view.stat(loc);
    const isDir = header.type === 'directory';
    if (existing) {
      if (opts.noOverwriteDirNonDir && existing.isDirectory() && !isDir)
        throw invalid(`cannot overwrite directory "${loc.container}" with non-directory "${header.name}"`);
      if (opts.noOverwriteDirNonDir && !existing.isDirectory() && isDir)
        throw invalid(`cannot overwrite non-directory "${loc.container}" with directory "${header.name}"`);
      if (!(existing.isDirectory() && isDir)) {
        if (loc.isMountPoint) throw invalid(`cannot replace mount point ${loc.container}`);
        await fs.rm(loc.host, { recursive: true, force: true });
      }
    }
    const mode = (header.mode ?? 0o644) & 0o7777;
    switch (header.type) {
      case 'directory':
        if (!existing) await fs.mkdir(loc.host, { mode: 0o700 });
        break;
      case 'file':
      case 'contiguous-file': {
        const fh = await fs.open(loc.host, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of stream) await fh.write(chunk as Buffer);
        } finally {
          await fh.close();
        }
        break;
      }
      case 'symlink':
        await fs.symlink(header.linkname ?? '', loc.host);
        break;
      case 'link':
        await fs.link(linkSource!.host, loc.host);
        break;
      case 'character-device':
      case 'block-device':
        await run('mknod', [
          loc.host,
          header.type === 'block-device' ? 'b' : 'c',
          String(header.devmajor ?? 0),
          String(header.devminor ?? 0),
        ]);
        break;
      case 'fifo':
        await run('mkfifo', [loc.host]);
        break;
      default:
        // pax headers, GNU long names are handled by tar-stream; anything else is skipped.
        stream.resume();
        return;
    }
    if (header.type !== 'file' && header.type !== 'contiguous-file') stream.resume();
    const uid = opts.chown ? opts.chown.uid : (header.uid ?? 0);
    const gid = opts.chown ? opts.chown.gid : (header.gid ?? 0);
    await fs.lchown(loc.host, uid, gid);
    if (header.type !== 'symlink' && header.type !== 'link') await fs.chmod(loc.host, mode);
    const mtime = header.mtime ?? new Date();
    if (header.type === 'directory') dirTimes.push({ host: loc.host, mtime });
    else if (header.type === 'symlink') await fs.lutimes(loc.host, mtime, mtime);
    else if (header.type !== 'link') await fs.utimes(loc.host, mtime, mtime);
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
  for (const d of dirTimes.reverse()) await fs.utimes(d.host, d.mtime, d.mtime).catch(() => {});
}
