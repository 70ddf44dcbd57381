/**
 * COPY and ADD: picking the sources (Go `filepath.Match` wildcards, each resolved inside its root),
 * hashing them for the cache (paths, types, modes, ownership, link targets, content; not mtimes),
 * and copying them into a mounted image filesystem with Docker's rules for the destination
 * (`dir/` vs a file name, the contents of a source directory, --chown, --chmod, ADD's local tar
 * extraction). The layer is the overlay's upper directory afterwards; no process runs.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';
import { invalid } from '../util/errors.js';
import { run } from '../util/exec.js';
import { resolveScoped } from './paths.js';

export interface Source {
  /** Path inside its root, as the user wrote or the wildcard matched it. */
  rel: string;
  host: string;
  stat: Stats;
  /** A downloaded file: ADD copies it as is, never unpacks it. */
  remote?: boolean;
}

export interface Identity {
  uid: number;
  gid: number;
}

const hasMeta = (s: string) => /[*?[\\]/.test(s);

/** Go's `filepath.Match` for one path segment, as a RegExp. */
export function segmentPattern(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const ch = seg[i];
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\' && i + 1 < seg.length) re += escapeRe(seg[++i]);
    else if (ch === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) throw invalid(`syntax error in pattern: ${seg}`);
      let cls = seg.slice(i + 1, end);
      if (cls.startsWith('^')) cls = `!${cls.slice(1)}`;
      re += cls.startsWith('!')
        ? `[^${cls.slice(1).replace(/\\/g, '\\\\')}]`
        : `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Resolves the sources of one COPY/ADD against `root`; errors worded as Docker's. */
export async function selectSources(root: string, patterns: string[], what: string): Promise<Source[]> {
  const out: Source[] = [];
  for (const raw of patterns) {
    const p = raw.replace(/^\/+/, '') || '.';
    if (!hasMeta(p)) {
      const host = await resolveScoped(root, p);
      const stat = await fs.lstat(host).catch(() => undefined);
      if (!stat)
        throw invalid(
          `${what} failed: file not found in build context or excluded by .dockerignore: stat ${raw}: file does not exist`,
        );
      out.push({ rel: p, host, stat });
      continue;
    }
    let matches: string[] = [''];
    for (const seg of p.split('/').filter((s) => s !== '' && s !== '.')) {
      const next: string[] = [];
      const re = hasMeta(seg) ? segmentPattern(seg) : undefined;
      for (const m of matches) {
        const dir = await resolveScoped(root, m);
        if (!re) {
          next.push(m ? `${m}/${seg}` : seg);
          continue;
        }
        const names = await fs.readdir(dir).catch(() => [] as string[]);
        for (const n of names.sort()) if (re.test(n)) next.push(m ? `${m}/${n}` : n);
      }
      matches = next;
    }
    for (const m of matches) {
      const host = await resolveScoped(root, m);
      const stat = await fs.lstat(host).catch(() => undefined);
      if (stat) out.push({ rel: m, host, stat });
    }
  }
  if (out.length === 0) throw invalid(`${what} failed: no source files were specified`);
  return out;
}

/** Content hash of the selected sources: what the cache key of a COPY/ADD depends on. */
export async function hashSources(sources: Source[]): Promise<string> {
  const h = createHash('sha256');
  const entry = async (host: string, rel: string, st: Stats): Promise<void> => {
    h.update(`${rel}\0${st.mode}\0${st.uid}:${st.gid}\0`);
    if (st.isSymbolicLink()) h.update(`L${await fs.readlink(host)}\0`);
    else if (st.isFile()) {
      h.update(`F${st.size}\0`);
      for await (const chunk of createReadStream(host)) h.update(chunk as Buffer);
    } else if (st.isDirectory()) {
      h.update('D\0');
      for (const n of (await fs.readdir(host)).sort()) {
        const p = path.join(host, n);
        await entry(p, `${rel}/${n}`, await fs.lstat(p));
      }
    }
  };
  // Follow a top-level symlink as the copy will.
  for (const s of sources)
    await entry(s.host, s.rel, s.stat.isSymbolicLink() ? await fs.stat(s.host) : s.stat);
  return `sha256:${h.digest('hex')}`;
}

export interface CopyOptions {
  /** Absolute destination inside the image, after WORKDIR was applied. */
  dest: string;
  /** The destination was written with a trailing slash (or is `.`-like). */
  destIsDir: boolean;
  owner?: Identity;
  chmod?: number;
  /** ADD: a local tar archive is unpacked instead of copied. */
  extractTars: boolean;
  what: string;
}

/** Copies the sources into the mounted filesystem at `root`. */
export async function copyInto(root: string, sources: Source[], o: CopyOptions): Promise<void> {
  const owner = o.owner ?? { uid: 0, gid: 0 };
  const destHost = await resolveScoped(root, o.dest);
  const destStat = await fs.stat(destHost).catch(() => undefined);
  if (sources.length > 1 && !o.destIsDir)
    throw invalid(
      `When using ${o.what} with more than one source file, the destination must be a directory and end with a /`,
    );
  const intoDir = o.destIsDir || destStat?.isDirectory() === true;
  for (const s of sources) {
    const st = s.stat.isSymbolicLink() ? await fs.stat(s.host) : s.stat;
    if (st.isDirectory()) {
      await mkdirp(root, o.dest, owner);
      await copyChildren(root, s.host, o.dest, owner, o.chmod);
    } else if (o.extractTars && !s.remote && st.isFile() && (await isTar(s.host))) {
      const dir = await mkdirp(root, o.dest, owner);
      const r = await run('tar', ['-x', '-p', '--same-owner', '--numeric-owner', '-C', dir, '-f', s.host], {
        allowFail: true,
      });
      if (r.code !== 0) throw invalid(`${o.what} failed: cannot unpack ${s.rel}: ${r.stderr.trim()}`);
    } else {
      const target = intoDir ? path.posix.join(o.dest, path.posix.basename(s.rel)) : o.dest;
      await mkdirp(root, path.posix.dirname(target), owner);
      await copyEntry(root, s.host, target, owner, o.chmod, true);
    }
  }
}

async function isTar(file: string): Promise<boolean> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (
      bytesRead >= 6 &&
      ((head[0] === 0x1f && head[1] === 0x8b) ||
        head.subarray(0, 3).toString('latin1') === 'BZh' ||
        head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))
    )
      return true;
    return bytesRead === 512 && head.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

/** WORKDIR: the directory and its missing parents, root-owned. */
export async function mkdirInImage(root: string, dir: string): Promise<void> {
  await mkdirp(root, dir, { uid: 0, gid: 0 });
}

/** Creates the directories of `dir` (image path) that are missing, owned by `owner`; returns its host path. */
async function mkdirp(root: string, dir: string, owner: Identity): Promise<string> {
  const parts = dir.split('/').filter(Boolean);
  let cur = '';
  for (const p of parts) {
    cur = `${cur}/${p}`;
    const host = await resolveScoped(root, cur);
    const st = await fs.lstat(host).catch(() => undefined);
    if (st?.isDirectory()) continue;
    if (st) throw invalid(`cannot copy to ${dir}: ${cur} is not a directory`);
    await fs.mkdir(host, { mode: 0o755 });
    await fs.lchown(host, owner.uid, owner.gid);
  }
  return resolveScoped(root, dir);
}

async function copyChildren(
  root: string,
  srcDir: string,
  destDir: string,
  owner: Identity,
  chmod?: number,
): Promise<void> {
  for (const n of (await fs.readdir(srcDir)).sort()) {
    await copyEntry(root, path.join(srcDir, n), path.posix.join(destDir, n), owner, chmod, false);
  }
}

async function copyEntry(
  root: string,
  src: string,
  dest: string,
  owner: Identity,
  chmod: number | undefined,
  followSrc: boolean,
): Promise<void> {
  const st = followSrc ? await fs.stat(src) : await fs.lstat(src);
  if (st.isDirectory()) {
    const host = await resolveScoped(root, dest);
    const have = await fs.lstat(host).catch(() => undefined);
    if (have && !have.isDirectory()) await fs.rm(host, { force: true });
    if (!have?.isDirectory()) await fs.mkdir(host);
    await copyChildren(root, src, dest, owner, chmod);
    await fs.lchown(host, owner.uid, owner.gid);
    await fs.chmod(host, chmod ?? st.mode & 0o7777);
    await fs.utimes(host, st.atime, st.mtime);
    return;
  }
  const host = await resolveScoped(root, dest, { followLast: false });
  const have = await fs.lstat(host).catch(() => undefined);
  if (have?.isDirectory()) throw invalid(`cannot overwrite directory ${dest} with a non-directory`);
  if (have) await fs.rm(host, { force: true });
  if (st.isSymbolicLink()) {
    await fs.symlink(await fs.readlink(src), host);
    await fs.lchown(host, owner.uid, owner.gid);
    await fs.lutimes(host, st.atime, st.mtime);
  } else if (st.isFile()) {
    await fs.copyFile(src, host);
    await fs.chown(host, owner.uid, owner.gid);
    await fs.chmod(host, chmod ?? st.mode & 0o7777);
    await fs.utimes(host, st.atime, st.mtime);
  }
  // fifos, sockets and devices in a context are not copied
}

/** `--chown=user:group` by name or number, names looked up in the image's /etc/passwd and /etc/group. */
export async function parseChown(root: string, spec: string): Promise<Identity> {
  const [u, g] = spec.split(':', 2);
  const lookup = async (file: string, name: string, field: number): Promise<number> => {
    if (/^\d+$/.test(name)) return Number(name);
    const text = await fs.readFile(await resolveScoped(root, file), 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f[field] !== undefined) return Number(f[field]);
    }
    throw invalid(
      `unable to convert uid/gid chown string to host mapping: no such ${file.includes('group') ? 'group' : 'user'}: ${name}`,
    );
  };
  const uid = await lookup('/etc/passwd', u, 2);
  let gid: number;
  if (g !== undefined && g !== '') gid = await lookup('/etc/group', g, 2);
  else if (/^\d+$/.test(u)) gid = uid;
  else gid = await lookup('/etc/passwd', u, 3);
  return { uid, gid };
}

export function parseChmod(spec: string): number {
  if (!/^[0-7]{3,4}$/.test(spec)) throw invalid(`invalid chmod parameter: ${spec}`);
  return Number.parseInt(spec, 8);
}
