import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, invalid, notFound } from '../util/errors.js';
import { fsyncDir, sweepTemps } from '../util/fsx.js';
import type { BlobInfo, ContentStore, Digest, Expected } from './index.js';
import { type Algorithm, parseDigest } from './digest.js';

/** Blobs at `<root>/blobs/<alg>/<hex>`; in-flight writes in `<root>/ingest/`. */
export class FileContentStore implements ContentStore {
  private constructor(readonly root: string) {}

  static async open(root: string): Promise<FileContentStore> {
    await fs.mkdir(path.join(root, 'blobs', 'sha256'), { recursive: true });
    await fs.mkdir(path.join(root, 'blobs', 'sha512'), { recursive: true });
    await fs.mkdir(path.join(root, 'ingest'), { recursive: true });
    await sweepTemps(path.join(root, 'ingest'));
    return new FileContentStore(root);
  }

  pathOf(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.root, 'blobs', algorithm, hex);
  }

  async info(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const st = await fs.stat(this.pathOf(digest));
      return { digest, size: st.size };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.info(digest)) !== undefined;
  }

  async read(digest: Digest): Promise<Buffer> {
    try {
      return await fs.readFile(this.pathOf(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw notFound(`blob not found: ${digest}`);
      throw err;
    }
  }

  readStream(digest: Digest, range?: { start: number; end: number }): Readable {
    return createReadStream(this.pathOf(digest), range);
  }

  private tempPath(): string {
    return path.join(this.root, 'ingest', `.tmp-${randomBytes(8).toString('hex')}`);
  }

  async write(data: Uint8Array, expected: Expected = {}): Promise<BlobInfo> {
    const algorithm = algorithmOf(expected);
    const digest = `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
    verify(expected, digest, data.byteLength);
    if (await this.has(digest)) return { digest, size: data.byteLength };
    const tmp = this.tempPath();
    const fh = await fs.open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.commit(tmp, digest);
    return { digest, size: data.byteLength };
  }

  async ingest(source: Readable, expected: Expected = {}): Promise<BlobInfo> {
    const algorithm = algorithmOf(expected);
    const hash = createHash(algorithm);
    let size = 0;
    const tmp = this.tempPath();
    const out = createWriteStream(tmp, { mode: 0o644 });
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        out,
      );
      const digest = `${algorithm}:${hash.digest('hex')}`;
      verify(expected, digest, size);
      const fh = await fs.open(tmp, 'r');
      await fh.sync();
      await fh.close();
      if (await this.has(digest)) await fs.rm(tmp, { force: true });
      else await this.commit(tmp, digest);
      return { digest, size };
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async adoptVerified(file: string, info: BlobInfo): Promise<void> {
    if (await this.has(info.digest)) {
      await fs.rm(file, { force: true });
      return;
    }
    await this.commit(file, info.digest);
  }

  private async commit(tmp: string, digest: Digest): Promise<void> {
    const dest = this.pathOf(digest);
    await fs.rename(tmp, dest);
    await fsyncDir(path.dirname(dest));
  }

  async delete(digest: Digest): Promise<boolean> {
    try {
      await fs.unlink(this.pathOf(digest));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const algorithm of ['sha256', 'sha512'] as Algorithm[]) {
      const dir = path.join(this.root, 'blobs', algorithm);
      for (const hex of await fs.readdir(dir)) {
        if (hex.startsWith('.')) continue;
        const st = await fs.stat(path.join(dir, hex)).catch(() => undefined);
        if (st) yield { digest: `${algorithm}:${hex}`, size: st.size };
      }
    }
  }
}

function algorithmOf(expected: Expected): Algorithm {
  return expected.digest ? parseDigest(expected.digest).algorithm : (expected.algorithm ?? 'sha256');
}

function verify(expected: Expected, digest: string, size: number): void {
  if (expected.size !== undefined && expected.size !== size) {
    throw invalid(`size mismatch: expected ${expected.size} bytes, got ${size}`);
  }
  if (expected.digest !== undefined && expected.digest !== digest) {
    throw invalid(`digest mismatch: expected ${expected.digest}, got ${digest}`);
  }
}
