/**
 * The build context: the request body (a tar, plain or gzip/bzip2/xz, or a bare Dockerfile sent as
 * `text/plain`) streamed to disk, checked (no `..`, nothing written through a symlink, no devices)
 * and unpacked into a private directory, root-owned with the modes it came with. `.dockerignore`
 * is applied here too (the docker CLI already applied it to a directory context; a tar given on
 * stdin or through the API arrives unfiltered), except that the Dockerfile is read first.
 */
import { createRequire } from 'node:module';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Ignore } from '@balena/dockerignore';
import { detectCompression } from '../layers/tar.js';
import { scanTar } from '../layers/scan.js';
import { invalid, notFound } from '../util/errors.js';
import { run } from '../util/exec.js';
import { resolveScoped } from './paths.js';

export interface BuildContext {
  /** The unpacked context. */
  root: string;
  dockerfile: string;
  dockerfileName: string;
}

async function readHead(file: string): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Octal (or GNU base-256) size field of a tar header. */
function headerSize(h: Buffer): number {
  const f = h.subarray(124, 136);
  if (f[0] & 0x80) return f.subarray(1).reduce((n, b) => n * 256 + b, 0);
  return Number.parseInt(f.toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
}

/** Whether the tar's members are all complete and only the padding and end blocks are missing. */
async function endsAfterLastMember(file: string, size: number): Promise<boolean> {
  const fh = await fs.open(file, 'r');
  try {
    const h = Buffer.alloc(512);
    for (let off = 0; off + 512 <= size; ) {
      await fh.read(h, 0, 512, off);
      if (h.every((b) => b === 0)) return false; // a proper end marker
      const dataEnd = off + 512 + headerSize(h);
      if (dataEnd > size) return false; // a member cut short: an error, not ours to mend
      off = off + 512 + Math.ceil(headerSize(h) / 512) * 512;
      if (off >= size) return true;
    }
    return false;
  } finally {
    await fh.close();
  }
}

/** Unpacks the request body into `<work>/context`; `work` is the build's private directory. */
export async function receiveContext(
  body: Readable,
  opts: { work: string; contentType?: string; dockerfile?: string },
): Promise<BuildContext> {
  const root = path.join(opts.work, 'context');
  await fs.mkdir(root, { recursive: true, mode: 0o755 });
  const dockerfileName = opts.dockerfile || 'Dockerfile';
  if (opts.contentType?.startsWith('text/plain')) {
    const chunks: Buffer[] = [];
    for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
    return { root, dockerfile: Buffer.concat(chunks).toString('utf8'), dockerfileName: 'Dockerfile' };
  }
  let tarFile = path.join(opts.work, 'context.tar');
  await pipeline(body, createWriteStream(tarFile));
  const kind = detectCompression(await readHead(tarFile));
  if (kind === 'zstd') throw invalid('unsupported compression: zstd');
  if (kind !== 'none') {
    const plain = path.join(opts.work, 'context.plain.tar');
    const tool = { gzip: 'gzip', bzip2: 'bzip2', xz: 'xz' }[kind];
    const r = await run('sh', ['-c', `${tool} -dc < "$1" > "$2"`, 'sh', tarFile, plain], { allowFail: true });
    if (r.code !== 0) throw invalid(`Error processing tar file: ${kind}: ${r.stderr.trim()}`);
    await fs.rm(tarFile, { force: true });
    tarFile = plain;
  }
  const size = (await fs.stat(tarFile)).size;
  if (size > 0) {
    // The docker CLI's `build -f - DIR` sends a tar cut short right after its last member's data
    // (no padding, no end blocks); Docker accepts it, so the missing zeros are added. A member
    // whose data is cut short stays an error.
    if (await endsAfterLastMember(tarFile, size))
      await fs.appendFile(tarFile, Buffer.alloc(((512 - (size % 512)) % 512) + 1024));
    await scanTar(createReadStream(tarFile));
    const r = await run('tar', ['-x', '-p', '--no-same-owner', '-C', root, '-f', tarFile], {
      allowFail: true,
    });
    if (r.code !== 0) throw invalid(`Error processing tar file: ${r.stderr.trim()}`);
  }
  await fs.rm(tarFile, { force: true });
  const dfPath = await resolveScoped(root, dockerfileName);
  const dockerfile = await fs.readFile(dfPath, 'utf8').catch(() => {
    throw notFound(`Cannot locate specified Dockerfile: ${dockerfileName}`);
  });
  await applyDockerignore(root);
  return { root, dockerfile, dockerfileName };
}

// A CommonJS module whose typings declare an ES default export: at run time the default is the factory.
// Loaded at the first build, not at daemon start (it costs a few MiB of RSS once imported).
function newIgnore(): Ignore {
  const m = createRequire(import.meta.url)('@balena/dockerignore') as { default?: () => Ignore } & (() => Ignore);
  return (m.default ?? m)();
}

/** Reads `.dockerignore` patterns (comments and blank lines dropped). */
export function parseDockerignore(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Removes what `.dockerignore` excludes; directories stay when an exception keeps something below. */
async function applyDockerignore(root: string): Promise<void> {
  const text = await fs.readFile(path.join(root, '.dockerignore'), 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const patterns = parseDockerignore(text);
  if (patterns.length === 0) return;
  const ig = newIgnore().add(patterns);
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const ignored = ig.ignores(r);
      if (e.isDirectory()) {
        await walk(r);
        if (ignored && (await fs.readdir(path.join(root, r))).length === 0)
          await fs.rmdir(path.join(root, r));
      } else if (ignored) await fs.rm(path.join(root, r), { force: true });
    }
  };
  await walk('');
}
