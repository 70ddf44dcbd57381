/**
 * Packs a directory tree into a tar stream with tar-stream: sorted entries, hard links kept,
 * devices and fifos, xattrs as `SCHILY.xattr.*` PAX records. With `overlayUpper`, the tree is an
 * overlayfs upper dir and its whiteouts become the layer format's: a char 0/0 device → an empty
 * `.wh.<name>` file, a dir with `trusted.overlay.opaque=y` → a `.wh..wh..opq` entry inside it.
 */
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { getAttribute, listAttributes } from '@napi-rs/xattr';
import { addEntry, addStreamEntry, pack, type TarHeader, type TarPack } from './tar.js';

export interface DirTarOptions {
  overlayUpper?: boolean;
  /** Paths (relative, no leading slash) to leave out with everything below them. */
  exclude?: (rel: string) => boolean;
  /** Later modification times are written as this one (`SOURCE_DATE_EPOCH` builds). */
  clampMtime?: Date;
}

export const devMajor = (rdev: number) =>
  Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
export const devMinor = (rdev: number) =>
  Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);

export const isWhiteoutDevice = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

export async function readXattrs(
  p: string,
  skipOverlay: boolean,
): Promise<Record<string, string> | undefined> {
  let names: string[];
  try {
    names = await listAttributes(p);
  } catch {
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const n of names.sort()) {
    if (skipOverlay && n.startsWith('trusted.overlay.')) continue;
    const v = await getAttribute(p, n).catch(() => null);
    if (v) out[`SCHILY.xattr.${n}`] = v.toString('latin1');
  }
  return Object.keys(out).length ? out : undefined;
}

export async function isOpaque(dir: string): Promise<boolean> {
  const v = await getAttribute(dir, 'trusted.overlay.opaque').catch(() => null);
  return v !== null && v.toString() === 'y';
}

const clamped = (t: Date, opts: DirTarOptions) =>
  opts.clampMtime && t > opts.clampMtime ? opts.clampMtime : t;

export function packDirectory(root: string, opts: DirTarOptions = {}): Readable {
  const p = pack();
  const links = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await fs.readdir(path.join(root, rel))).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      if (opts.exclude?.(r)) continue;
      await addPath(p, root, r, opts, links);
      const st = await fs.lstat(path.join(root, r)).catch(() => undefined);
      if (st?.isDirectory()) {
        if (opts.overlayUpper && (await isOpaque(path.join(root, r)))) {
          await addEntry(p, {
            name: `${r}/.wh..wh..opq`,
            type: 'file',
            mode: 0o644,
            size: 0,
            mtime: clamped(st.mtime, opts),
            uid: 0,
            gid: 0,
          });
        }
        await walk(r);
      }
    }
  };
  walk('')
    .then(() => p.finalize())
    .catch((err: Error) => p.destroy(err));
  return p;
}

async function addPath(
  p: TarPack,
  root: string,
  rel: string,
  opts: DirTarOptions,
  links: Map<string, string>,
): Promise<void> {
  const full = path.join(root, rel);
  const st = await fs.lstat(full).catch(() => undefined);
  if (!st) return; // vanished while walking
  const h: TarHeader = {
    name: rel,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: clamped(st.mtime, opts),
    size: 0,
  };
  if (opts.overlayUpper && isWhiteoutDevice(st)) {
    const dir = path.posix.dirname(rel);
    const name = `${dir === '.' ? '' : `${dir}/`}.wh.${path.posix.basename(rel)}`;
    await addEntry(p, {
      name,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: clamped(st.mtime, opts),
      size: 0,
    });
    return;
  }
  const pax = await readXattrs(full, true);
  if (pax) h.pax = pax;
  if (st.isFile()) {
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first) {
        await addEntry(p, { ...h, type: 'link', linkname: first });
        return;
      }
      links.set(key, rel);
    }
    h.type = 'file';
    h.size = st.size;
    if (st.size === 0) await addEntry(p, h, Buffer.alloc(0));
    else await addStreamEntry(p, h, createReadStream(full));
  } else if (st.isDirectory()) {
    await addEntry(p, { ...h, name: `${rel}/`, type: 'directory' });
  } else if (st.isSymbolicLink()) {
    await addEntry(p, { ...h, type: 'symlink', linkname: await fs.readlink(full) });
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    await addEntry(p, {
      ...h,
      type: st.isCharacterDevice() ? 'character-device' : 'block-device',
      devmajor: devMajor(st.rdev),
      devminor: devMinor(st.rdev),
    });
  } else if (st.isFIFO()) {
    await addEntry(p, { ...h, type: 'fifo' });
  }
  // sockets are not archived (as GNU tar and Docker do)
}
