/**
 * tar-stream, made binary-safe for xattrs, plus the small helpers every tar producer and consumer
 * here shares. tar-stream decodes and encodes PAX values as UTF-8, which turns binary xattr values
 * (`security.capability`) into U+FFFD; `SCHILY.xattr.*` values are latin1 strings (one char per
 * byte) after this module is loaded.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tarStream from 'tar-stream';
import { invalid } from '../util/errors.js';

const require = createRequire(import.meta.url);
const headers = require(path.join(path.dirname(require.resolve('tar-stream')), 'headers.js')) as {
  encodePax: (opts: { name?: string; linkname?: string; pax?: Record<string, string> }) => Buffer;
  decodePax: (buf: Buffer) => Record<string, string>;
};

const isXattrKey = (key: string) => key.startsWith('SCHILY.xattr.');

function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.concat([
    Buffer.from(` ${key}=`, 'utf8'),
    Buffer.from(value, isXattrKey(key) ? 'latin1' : 'utf8'),
    Buffer.from('\n'),
  ]);
  let digits = String(body.length).length;
  if (body.length + digits >= 10 ** digits) digits++;
  return Buffer.concat([Buffer.from(String(body.length + digits)), body]);
}

headers.encodePax = (opts) => {
  const parts: Buffer[] = [];
  if (opts.name) parts.push(paxRecord('path', opts.name));
  if (opts.linkname) parts.push(paxRecord('linkpath', opts.linkname));
  for (const [k, v] of Object.entries(opts.pax ?? {})) parts.push(paxRecord(k, v));
  return Buffer.concat(parts);
};

headers.decodePax = (input) => {
  const result: Record<string, string> = {};
  let buf = Buffer.from(input);
  while (buf.length) {
    const sp = buf.indexOf(32);
    if (sp <= 0) break;
    const len = Number.parseInt(buf.subarray(0, sp).toString('latin1'), 10);
    if (!len || len > buf.length) break;
    const rec = buf.subarray(sp + 1, len - 1);
    const eq = rec.indexOf(61);
    if (eq === -1) break;
    const key = rec.subarray(0, eq).toString('utf8');
    result[key] = rec.subarray(eq + 1).toString(isXattrKey(key) ? 'latin1' : 'utf8');
    buf = buf.subarray(len);
  }
  return result;
};

export type EntryType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'contiguous-file';

/** A tar header as tar-stream reads and writes it (with the PAX records it keeps). */
export interface TarHeader {
  name: string;
  type?: EntryType | string | null;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: Date;
  linkname?: string | null;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string> | null;
}

export interface TarEntry extends Readable {
  header: TarHeader;
}

export interface TarPack extends Readable {
  entry(header: TarHeader, callback?: (err?: Error | null) => void): NodeJS.WritableStream;
  entry(
    header: TarHeader,
    buffer?: Buffer | string,
    callback?: (err?: Error | null) => void,
  ): NodeJS.WritableStream;
  finalize(): void;
}

export interface TarExtract extends NodeJS.WritableStream {
  [Symbol.asyncIterator](): AsyncIterableIterator<TarEntry>;
}

export const pack = (): TarPack => tarStream.pack() as unknown as TarPack;
export const extract = (): TarExtract => tarStream.extract() as unknown as TarExtract;

/** Writes one entry and waits until tar-stream took it (file bodies are passed whole). */
export function addEntry(p: TarPack, header: TarHeader, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    p.entry(header, body ?? (header.type === 'file' || !header.type ? Buffer.alloc(0) : undefined), (err) =>
      err ? reject(err) : resolve(),
    );
  });
}

/** Streams a file body into an entry (for big files), resolving when it is written. */
export function addStreamEntry(p: TarPack, header: TarHeader, body: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = p.entry(header, (err) => (err ? reject(err) : resolve()));
    body.on('error', (e) => {
      reject(e);
      (sink as unknown as { destroy: (e: Error) => void }).destroy(e);
    });
    body.pipe(sink as unknown as NodeJS.WritableStream);
  });
}

/** Normalises a member name: no leading `./` or `/`, no trailing `/`; `''` for the root. */
export function cleanName(name: string): string {
  let n = name.replace(/\/+$/, '');
  while (n.startsWith('./') || n.startsWith('/')) n = n.startsWith('./') ? n.slice(2) : n.slice(1);
  if (n === '.') return '';
  return n;
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a];
const BZIP_MAGIC = [0x42, 0x5a, 0x68];

export type Compression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

export function detectCompression(head: Buffer): Compression {
  const starts = (m: number[]) => m.every((b, i) => head[i] === b);
  if (starts(GZIP_MAGIC)) return 'gzip';
  if (starts(ZSTD_MAGIC)) return 'zstd';
  if (starts(XZ_MAGIC)) return 'xz';
  if (starts(BZIP_MAGIC)) return 'bzip2';
  return 'none';
}

/**
 * Returns the stream uncompressed: gzip is undone with node:zlib, zstd by Debian's `zstd` tool (Node
 * 20 has no zstd); other compressions are refused (400) rather than handed on as garbage.
 */
export async function decompressed(source: Readable): Promise<Readable> {
  // Peek at the first bytes with plain 'data' events (no async iterator on the source: a request
  // body must stay drainable with resume() when the consumer gives up early).
  const first: Buffer[] = [];
  let have = 0;
  let sawEnd = false;
  source.once('end', () => {
    sawEnd = true;
  });
  const ended = await new Promise<boolean>((resolve, reject) => {
    const done = (v: boolean) => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      resolve(v);
    };
    const onData = (b: Buffer) => {
      first.push(Buffer.from(b));
      have += b.length;
      if (have >= 6) {
        source.pause();
        done(false);
      }
    };
    const onEnd = () => done(true);
    const onError = (e: Error) => {
      source.off('data', onData);
      source.off('end', onEnd);
      reject(e);
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
  });
  const head = Buffer.concat(first);
  const kind = detectCompression(head);
  if (kind !== 'none' && kind !== 'gzip' && kind !== 'zstd') {
    throw invalid(`unsupported compression: ${kind} (only gzip, zstd and uncompressed tars are accepted)`);
  }
  const rest = new PassThrough();
  source.on('error', (e) => rest.destroy(e));
  if (head.length) rest.write(head);
  if (ended || sawEnd || source.readableEnded) rest.end();
  else {
    source.pipe(rest);
    source.resume(); // streamx sources (tar-stream's pack) stay paused through pipe()
  }
  if (kind === 'none') return rest;
  if (kind === 'zstd') return unzstd(rest);
  const gunzip = createGunzip();
  rest.on('error', (e) => gunzip.destroy(e));
  return rest.pipe(gunzip);
}

/**
 * zstd through a `zstd -dc` child. Its output ends only once the child exited cleanly, so a broken
 * frame is an error and never a short, "complete" tar.
 */
function unzstd(source: Readable): Readable {
  const child = spawn('zstd', ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  child.stdin.on('error', () => {}); // the child's exit reports what went wrong
  source.on('error', (e) => {
    child.kill('SIGKILL');
    out.destroy(e);
  });
  source.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(invalid(`zstd: ${e.message}`)));
  child.on('close', (code) => {
    if (code === 0) out.end();
    else if (!out.destroyed) out.destroy(invalid(`zstd: ${stderr.trim() || `exited with ${code}`}`));
  });
  out.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return out;
}
