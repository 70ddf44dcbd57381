/**
 * Layers and container root filesystems on overlayfs, under `<dataRoot>/overlay`:
 *
 *   layers/<hex>/diff         a layer unpacked once (whiteouts as char 0/0, opaque dirs by xattr)
 *   layers/<hex>/layer.json   written before the directory is renamed into place: a layer is
 *                             there iff this file is
 *   l/<short>                 short symlinks to layers/<hex>/diff, so the mount options of an
 *                             image with many layers stay below the page-size limit (as overlay2)
 *   containers/<id>/          init (mount points Docker's init layer holds), diff (upper),
 *                             work, merged, meta.json (the image's diff IDs)
 *   tmp/                      unpacking in progress; swept at start
 *
 * The uncompressed layer tar is kept in the content store under its diff ID, so `save` returns
 * byte-identical layers and an image saved and loaded again keeps its ID.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, type Readable, Transform } from 'node:stream';
import { setAttribute } from '@napi-rs/xattr';
import type { ContentStore } from '../content/index.js';
import { errnoCode, invalid, notFound, systemError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { exists, readJsonOr, writeJsonAtomic } from '../util/fsx.js';
import { log } from '../util/log.js';
import { isOpaque, isWhiteoutDevice, packDirectory } from './dirtar.js';
import { Mounter } from './mounter.js';
import type { Change, LayerInfo, LayerStore, RootfsStore } from './index.js';
import { type ScanResult, scanTar, tarError } from './scan.js';
import { addEntry, decompressed, pack } from './tar.js';

export interface RootfsStoreOptions {
  root: string;
  content: ContentStore;
}

interface ContainerMeta {
  diffIds: string[];
  /** Key of the shared init layer (`inits/<key>/root`); absent: a private `containers/<id>/init`. */
  init?: string;
}

/** The init layer is the same for every container of an image: made once, shared read-only. */
const initKey = (diffIds: string[]) =>
  createHash('sha256').update(diffIds.join('\n')).digest('hex').slice(0, 16);

const hexOf = (diffId: string) => {
  const m = /^sha256:([0-9a-f]{64})$/.exec(diffId);
  if (!m) throw invalid(`invalid layer digest: ${diffId}`);
  return m[1];
};
const shortOf = (hex: string) => hex.slice(0, 16);
const checkId = (id: string) => {
  if (!/^[0-9a-zA-Z_.-]+$/.test(id)) throw invalid(`invalid container ID: ${id}`);
  return id;
};

/** Paths of Docker's init layer: mount points the runtime binds over, so they never show in a diff. */
const INIT_DIRS = ['dev', 'dev/pts', 'dev/shm', 'proc', 'sys', 'etc'];
const INIT_FILES = ['.dockerenv', 'dev/console', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf'];

export class OverlayStore implements RootfsStore, LayerStore {
  private readonly layers = new Map<string, LayerInfo>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly mounter = new Mounter();
  private readonly inits = new Set<string>();

  private constructor(
    readonly root: string,
    readonly content: ContentStore,
  ) {}

  static async open(opts: RootfsStoreOptions): Promise<OverlayStore> {
    const s = new OverlayStore(opts.root, opts.content);
    for (const d of ['layers', 'l', 'containers', 'inits', 'tmp'])
      await fs.mkdir(path.join(opts.root, d), { recursive: true });
    // A removal interrupted by a stop may have left a container's mount in its trash directory:
    // detach it before emptying `tmp`, so nothing is deleted through it.
    for (const m of s.mountsUnder(path.join(opts.root, 'tmp'))) await s.mounter.umount(m, true);
    await fs.rm(path.join(opts.root, 'tmp'), { recursive: true, force: true });
    await fs.mkdir(path.join(opts.root, 'tmp'));
    for (const hex of await fs.readdir(path.join(opts.root, 'layers'))) {
      const info = await readJsonOr<LayerInfo | null>(
        path.join(opts.root, 'layers', hex, 'layer.json'),
        null,
      );
      if (info) s.layers.set(info.diffId, info);
      else await fs.rm(path.join(opts.root, 'layers', hex), { recursive: true, force: true });
    }
    // Links whose layer never landed (a crash between link and rename).
    for (const l of await fs.readdir(path.join(opts.root, 'l'))) {
      const link = path.join(opts.root, 'l', l);
      if (!(await fs.stat(link).catch(() => undefined))) await fs.rm(link, { force: true });
    }
    return s;
  }

  /** Serialises work on one key (a layer or a container). */
  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.locks.set(key, next);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === next) this.locks.delete(key);
    }
  }

  // ---- layers ----

  layerInfo(diffId: string): LayerInfo | undefined {
    return this.layers.get(diffId);
  }

  layerTar(diffId: string): Readable {
    if (!this.layers.has(diffId)) throw notFound(`layer not found: ${diffId}`);
    return this.content.readStream(diffId);
  }

  layerDir(diffId: string): string {
    return path.join(this.root, 'layers', hexOf(diffId), 'diff');
  }

  async applyLayer(source: Readable, opts: { expectDiffId?: string } = {}): Promise<LayerInfo> {
    if (opts.expectDiffId) hexOf(opts.expectDiffId);
    const plain = await decompressed(source);
    // The tar is checked while it is stored: a hostile or broken one never becomes a blob.
    const scanSink = new PassThrough();
    const scanning = scanTar(scanSink);
    let scanErr: Error | undefined;
    const tee = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (scanErr) return cb(scanErr);
        if (scanSink.write(chunk)) cb(null, chunk);
        else scanSink.once('drain', () => cb(null, chunk));
      },
      flush(cb) {
        scanSink.end();
        cb();
      },
    });
    scanning.catch((err: Error) => {
      scanErr = err;
      tee.destroy(err);
    });
    plain.on('error', (err) => tee.destroy(err));
    plain.pipe(tee);
    let blob: { digest: string; size: number } | undefined;
    let scan: ScanResult;
    try {
      blob = await this.content.ingest(tee, opts.expectDiffId ? { digest: opts.expectDiffId } : {});
      scan = await scanning;
    } catch (err) {
      scanSink.destroy();
      // Stored, then found broken at its end (a truncated tar): the blob goes again.
      if (blob && !this.layers.has(blob.digest)) await this.content.delete(blob.digest).catch(() => {});
      if (scanErr) throw scanErr;
      if (errnoCode(err) === 'Z_DATA_ERROR' || errnoCode(err) === 'Z_BUF_ERROR')
        throw tarError(`gzip: ${(err as Error).message}`);
      if (err instanceof Error && /digest mismatch/.test(err.message))
        throw invalid(`layer digest mismatch: ${err.message}`);
      throw err;
    }
    const diffId = blob.digest;
    if (blob.size === 0) {
      if (!this.layers.has(diffId)) await this.content.delete(diffId).catch(() => {});
      throw tarError('unexpected EOF');
    }
    return this.locked(diffId, async () => {
      const have = this.layers.get(diffId);
      if (have) return have;
      try {
        return await this.unpack(diffId, scan);
      } catch (err) {
        await this.content.delete(diffId).catch(() => {});
        throw err;
      }
    });
  }

  private async unpack(diffId: string, scan: ScanResult): Promise<LayerInfo> {
    const hex = hexOf(diffId);
    const tmp = path.join(this.root, 'tmp', randomBytes(8).toString('hex'));
    const diff = path.join(tmp, 'diff');
    await fs.mkdir(diff, { recursive: true, mode: 0o755 });
    try {
      const r = await run(
        'tar',
        [
          '-x',
          '-p',
          '--numeric-owner',
          '--xattrs',
          '--xattrs-include=*',
          '--xattrs-exclude=trusted.overlay.*',
          '-C',
          diff,
          '-f',
          this.content.pathOf(diffId),
        ],
        { allowFail: true },
      );
      if (r.code !== 0)
        throw tarError(
          r.stderr
            .trim()
            .split('\n')
            .filter((l) => !/Exiting with failure/.test(l))
            .join('; ') || `tar exited ${r.code}`,
        );
      for (const j of scan.junk) await fs.rm(path.join(diff, j), { force: true, recursive: true });
      for (const dir of scan.opaques) {
        await fs.rm(path.join(diff, dir, '.wh..wh..opq'), { force: true });
        await setAttribute(path.join(diff, dir), 'trusted.overlay.opaque', 'y');
      }
      if (scan.whiteouts.length) await this.makeWhiteouts(diff, scan.whiteouts);
      const info: LayerInfo = { diffId, size: scan.size };
      const short = shortOf(hex);
      await fs.writeFile(path.join(tmp, 'link'), short);
      await writeJsonAtomic(path.join(tmp, 'layer.json'), info);
      const link = path.join(this.root, 'l', short);
      await fs.rm(link, { force: true });
      await fs.symlink(`../layers/${hex}/diff`, link);
      try {
        await fs.rename(tmp, path.join(this.root, 'layers', hex));
      } catch (err) {
        if (!['ENOTEMPTY', 'EEXIST'].includes(errnoCode(err) ?? '')) throw err;
      }
      this.layers.set(diffId, info);
      return info;
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /** `.wh.<name>` files become char 0/0 devices, made in one GNU tar run (Node 20 has no mknod). */
  private async makeWhiteouts(diff: string, whiteouts: string[]): Promise<void> {
    const p = pack();
    const chunks: Buffer[] = [];
    p.on('data', (b: Buffer) => chunks.push(b));
    const ended = new Promise((r) => p.on('end', r));
    for (const w of whiteouts) {
      const dir = path.posix.dirname(w);
      await fs.rm(path.join(diff, dir, `.wh.${path.posix.basename(w)}`), { force: true });
      await fs.rm(path.join(diff, w), { force: true, recursive: true });
      await addEntry(p, {
        name: w,
        type: 'character-device',
        devmajor: 0,
        devminor: 0,
        mode: 0,
        uid: 0,
        gid: 0,
        mtime: new Date(0),
      });
    }
    p.finalize();
    await ended;
    await run('tar', ['-x', '-p', '--numeric-owner', '-C', diff, '-f', '-'], {
      input: Buffer.concat(chunks),
    });
  }

  async gc(keep: Set<string>): Promise<number> {
    if ([...this.layers.keys()].every((d) => keep.has(d))) return 0;
    const used = new Set(keep);
    for (const cid of await fs.readdir(path.join(this.root, 'containers'))) {
      const meta = await readJsonOr<ContainerMeta | null>(
        path.join(this.root, 'containers', cid, 'meta.json'),
        null,
      );
      for (const d of meta?.diffIds ?? []) used.add(d);
    }
    let freed = 0;
    for (const [diffId, info] of [...this.layers]) {
      if (used.has(diffId)) continue;
      await this.locked(diffId, async () => {
        if (!this.layers.has(diffId)) return;
        const hex = hexOf(diffId);
        this.layers.delete(diffId);
        const trash = path.join(this.root, 'tmp', `gc-${hex}`);
        await fs.rename(path.join(this.root, 'layers', hex), trash).catch(() => {});
        await fs.rm(path.join(this.root, 'l', shortOf(hex)), { force: true });
        await fs.rm(trash, { recursive: true, force: true });
        await this.content.delete(diffId);
        freed += info.size;
      });
    }
    // Init layers of images whose layers are gone (no container can use them any more).
    for (const key of await fs.readdir(path.join(this.root, 'inits'))) {
      const ids = await readJsonOr<string[] | null>(path.join(this.root, 'inits', key, 'layers.json'), null);
      if (ids?.every((d) => this.layers.has(d))) continue;
      await this.locked(`init:${key}`, async () => {
        this.inits.delete(key);
        const trash = path.join(this.root, 'tmp', `gc-init-${key}`);
        await fs.rename(path.join(this.root, 'inits', key), trash).catch(() => {});
        await fs.rm(trash, { recursive: true, force: true });
      });
    }
    return freed;
  }

  // ---- container root filesystems ----

  private cdir(id: string): string {
    return path.join(this.root, 'containers', checkId(id));
  }

  private async meta(id: string): Promise<ContainerMeta> {
    const m = await readJsonOr<ContainerMeta | null>(path.join(this.cdir(id), 'meta.json'), null);
    if (!m) throw notFound(`no root filesystem for container ${id}`);
    return m;
  }

  /** Lower dirs, top first, relative to the store root (the mount runs with cwd = root). */
  private initDir(id: string, meta: ContainerMeta): string {
    return meta.init ? `inits/${meta.init}/root` : `containers/${id}/init`;
  }

  private lowers(id: string, meta: ContainerMeta): string[] {
    return [this.initDir(id, meta), ...[...meta.diffIds].reverse().map((d) => `l/${shortOf(hexOf(d))}`)];
  }

  /** Makes (once) the init layer shared by the containers of the image with these layers. */
  private async ensureInit(diffIds: string[]): Promise<string> {
    const key = initKey(diffIds);
    const dir = path.join(this.root, 'inits', key);
    if (this.inits.has(key)) return key;
    await this.locked(`init:${key}`, async () => {
      if (await exists(path.join(dir, 'layers.json'))) return;
      const tmp = path.join(this.root, 'tmp', `init-${randomBytes(6).toString('hex')}`);
      try {
        await fs.mkdir(path.join(tmp, 'root'), { recursive: true, mode: 0o755 });
        await this.makeInit(path.join(tmp, 'root'), diffIds);
        await writeJsonAtomic(path.join(tmp, 'layers.json'), diffIds);
        await fs.rename(tmp, dir).catch((err) => {
          if (!['ENOTEMPTY', 'EEXIST'].includes(errnoCode(err) ?? '')) throw err;
        });
      } finally {
        await fs.rm(tmp, { recursive: true, force: true });
      }
    });
    this.inits.add(key);
    return key;
  }

  async create(containerId: string, diffIds: string[]): Promise<void> {
    const id = checkId(containerId);
    await this.locked(`c:${id}`, async () => {
      const dir = this.cdir(id);
      if (await exists(path.join(dir, 'meta.json'))) return;
      for (const d of diffIds) if (!this.layers.has(d)) throw notFound(`layer not found: ${d}`);
      const init = await this.ensureInit(diffIds);
      for (const sub of ['diff', 'work', 'merged'])
        mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o755 });
      await writeJsonAtomic(path.join(dir, 'meta.json'), { diffIds, init } satisfies ContainerMeta);
    });
  }

  /** Finds a path in the image's layers, top first (lstat of the first layer that has it). */
  private async lowerStat(diffIds: string[], rel: string) {
    for (let i = diffIds.length - 1; i >= 0; i--) {
      const st = await fs.lstat(path.join(this.layerDir(diffIds[i]), rel)).catch(() => undefined);
      if (st) return isWhiteoutDevice(st) ? undefined : st;
    }
    return undefined;
  }

  private async makeInit(init: string, diffIds: string[]): Promise<void> {
    for (const d of INIT_DIRS) {
      const st = await this.lowerStat(diffIds, d);
      if (st && !st.isDirectory()) continue;
      const p = path.join(init, d);
      await fs.mkdir(p, { recursive: true });
      await fs.chmod(p, st ? st.mode & 0o7777 : 0o755);
      await fs.lchown(p, st?.uid ?? 0, st?.gid ?? 0);
    }
    for (const f of INIT_FILES) {
      const st = await this.lowerStat(diffIds, f);
      if (st && !st.isFile()) continue;
      if (!(await exists(path.join(init, path.dirname(f))))) continue;
      await fs.writeFile(path.join(init, f), '', { mode: 0o755 });
    }
    if (!(await this.lowerStat(diffIds, 'etc/mtab')) && (await exists(path.join(init, 'etc')))) {
      await fs.symlink('/proc/mounts', path.join(init, 'etc/mtab'));
    }
  }

  /** Mount points (as /proc/self/mountinfo escapes them) — read directly: cheaper than the threadpool. */
  private mountPoints(): string[] {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => !!m);
  }

  private async isMounted(target: string): Promise<boolean> {
    return this.mountPoints().includes(escapeMountPath(target));
  }

  /** Mounts at or below `dir`, deepest first (decoded paths). */
  private mountsUnder(dir: string): string[] {
    const esc = escapeMountPath(dir);
    return this.mountPoints()
      .filter((m) => m === esc || m.startsWith(`${esc}/`))
      .map((m) => m.replace(/\\(\d{3})/g, (_x, o: string) => String.fromCharCode(parseInt(o, 8))))
      .sort((a, b) => b.length - a.length);
  }

  async mount(containerId: string): Promise<string> {
    const id = checkId(containerId);
    return this.locked(`c:${id}`, async () => {
      const meta = await this.meta(id);
      const merged = path.join(this.cdir(id), 'merged');
      if (await this.isMounted(merged)) return merged;
      const opts = `lowerdir=${this.lowers(id, meta).join(':')},upperdir=containers/${id}/diff,workdir=containers/${id}/work,index=off,redirect_dir=off,metacopy=off`;
      if (opts.length > 4000) throw systemError(`too many layers to mount (${meta.diffIds.length})`);
      await this.mounter.mount('overlay', merged, 'overlay', opts, this.root);
      return merged;
    });
  }

  async unmount(containerId: string): Promise<void> {
    const id = checkId(containerId);
    await this.locked(`c:${id}`, () => this.unmountNow(id));
  }

  private async unmountNow(id: string): Promise<void> {
    const merged = path.join(this.cdir(id), 'merged');
    if (!(await this.isMounted(merged))) return;
    const r = await this.mounter.umount(merged);
    if (r.code !== 0 && (await this.isMounted(merged))) {
      const lazy = await this.mounter.umount(merged, true);
      if (lazy.code !== 0 && (await this.isMounted(merged)))
        throw systemError(`umount ${merged}: ${lazy.output.trim()}`);
    }
  }

  async remove(containerId: string): Promise<void> {
    const id = checkId(containerId);
    await this.locked(`c:${id}`, async () => {
      const dir = this.cdir(id);
      if (!(await exists(dir))) return;
      const trash = path.join(this.root, 'tmp', `rm-${id}-${randomBytes(4).toString('hex')}`);
      // The rename takes the layer out of the store at once (its mount, if any, moves along); the
      // unmount and the files follow in the background, so `docker rm` and `run --rm` need not
      // wait for them. `tmp` is emptied, mounts first, at every start should berthd stop before.
      await fs.rename(dir, trash);
      void this.discard(trash).catch((err) =>
        log.warn('cannot remove a deleted container layer', { trash, err }),
      );
    });
  }

  async removeOrphans(keep: Set<string>): Promise<string[]> {
    const orphans = (await fs.readdir(path.join(this.root, 'containers'))).filter((id) => !keep.has(id));
    for (const id of orphans) await this.remove(id);
    return orphans;
  }

  private async discard(trash: string): Promise<void> {
    const merged = path.join(trash, 'merged');
    if (await this.isMounted(merged)) {
      const r = await this.mounter.umount(merged);
      if (r.code !== 0) await this.mounter.umount(merged, true);
    }
    if (await this.isMounted(merged)) throw systemError(`cannot unmount ${merged}`);
    await fs.rm(trash, { recursive: true, force: true });
  }

  async baseLayers(containerId: string): Promise<string[]> {
    return [...(await this.meta(checkId(containerId))).diffIds];
  }

  async sizeRw(containerId: string): Promise<number> {
    const upper = path.join(this.cdir(checkId(containerId)), 'diff');
    let total = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) total += (await fs.lstat(p).catch(() => ({ size: 0 }))).size;
      }
    };
    await walk(upper);
    return total;
  }

  async changes(containerId: string): Promise<Change[]> {
    const id = checkId(containerId);
    const meta = await this.meta(id);
    const upper = path.join(this.cdir(id), 'diff');
    const init = path.join(this.root, this.initDir(id, meta));
    const out: Change[] = [];
    const inLower = async (rel: string) =>
      (await fs.lstat(path.join(init, rel)).catch(() => undefined)) !== undefined ||
      (await this.lowerStat(meta.diffIds, rel)) !== undefined;
    const walk = async (rel: string): Promise<void> => {
      for (const n of (await fs.readdir(path.join(upper, rel))).sort()) {
        const r = rel ? `${rel}/${n}` : n;
        const st = await fs.lstat(path.join(upper, r)).catch(() => undefined);
        if (!st) continue;
        const lower = await inLower(r);
        if (isWhiteoutDevice(st)) {
          if (lower) out.push({ Path: `/${r}`, Kind: 2 });
          continue;
        }
        out.push({ Path: `/${r}`, Kind: lower ? 0 : 1 });
        if (!st.isDirectory()) continue;
        if (lower && (await isOpaque(path.join(upper, r)))) {
          // An opaque dir hides everything below it in the image: those entries are deleted.
          const mine = new Set(await fs.readdir(path.join(upper, r)));
          const theirs = new Set<string>();
          for (const dir of [init, ...meta.diffIds.map((d) => this.layerDir(d))]) {
            for (const c of await fs.readdir(path.join(dir, r)).catch(() => [] as string[])) theirs.add(c);
          }
          for (const c of theirs) {
            if (!mine.has(c) && (await inLower(`${r}/${c}`))) out.push({ Path: `/${r}/${c}`, Kind: 2 });
          }
        }
        await walk(r);
      }
    };
    await walk('');
    return out.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
  }

  async diffTar(containerId: string, opts: { clampMtime?: Date } = {}): Promise<Readable> {
    const id = checkId(containerId);
    await this.meta(id);
    return packDirectory(path.join(this.cdir(id), 'diff'), {
      overlayUpper: true,
      clampMtime: opts.clampMtime,
    });
  }

  async exportTar(containerId: string): Promise<Readable> {
    const id = checkId(containerId);
    const merged = path.join(this.cdir(id), 'merged');
    const wasMounted = await this.isMounted(merged);
    await this.mount(id);
    const tar = packDirectory(merged);
    if (!wasMounted) {
      const done = () => void this.unmount(id).catch(() => {});
      tar.once('end', done);
      tar.once('error', done);
      tar.once('close', done);
    }
    return tar;
  }
}

export async function openRootfsStore(opts: RootfsStoreOptions): Promise<OverlayStore> {
  return OverlayStore.open(opts);
}

/** A path as /proc/self/mountinfo writes it (space, tab, newline and backslash octal-escaped). */
function escapeMountPath(p: string): string {
  return p.replace(/\\/g, '\\134').replace(/ /g, '\\040').replace(/\t/g, '\\011').replace(/\n/g, '\\012');
}
