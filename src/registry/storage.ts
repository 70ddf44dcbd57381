/**
 * Registry storage on the filesystem, over the shared content store (`src/content/`).
 *
 * Layout under the registry root:
 *   content/blobs/<alg>/<hex>                     every blob and manifest, once (content store)
 *   repositories/<name>/_layers/<alg>/<hex>       empty file: blob is part of the repository
 *   repositories/<name>/_manifests/revisions/<alg>/<hex>   JSON {mediaType}: manifest is in the repository
 *   repositories/<name>/_manifests/tags/<tag>     the digest the tag points at
 *   repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  JSON descriptor of a manifest whose subject is <alg>:<hex>
 *   uploads/<uuid>/data, uploads/<uuid>/info.json resumable uploads in progress
 *
 * A blob or manifest becomes readable only once its bytes are verified and renamed into place, and
 * every record is written to a temp file, fsynced and renamed: a crash never leaves a half-written
 * blob, link, tag or manifest readable.
 */
import { createHash, type Hash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileContentStore } from '../content/file-store.js';
import { errnoCode } from '../util/errors.js';
import { fsyncDir, writeFileAtomic } from '../util/fsx.js';
import { RegistryError } from './errors.js';
import { GcFence } from './gc-fence.js';
import { digestAlgorithm } from './names.js';

export type Algorithm = 'sha256' | 'sha512';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
}

export interface UploadState {
  id: string;
  name: string;
  size: number;
  algorithm: Algorithm;
}

interface LiveUpload {
  hash: Hash;
  size: number;
  algorithm: Algorithm;
  /** Serialises the operations on one upload. */
  queue: Promise<unknown>;
}

const split = (digest: string) => {
  const i = digest.indexOf(':');
  return { alg: digest.slice(0, i), hex: digest.slice(i + 1) };
};

export class RegistryStorage {
  readonly content: FileContentStore;
  /** Keeps writers' critical sections and gc sweeps apart, across processes on this root. */
  readonly fence: GcFence;
  private readonly live = new Map<string, LiveUpload>();

  private constructor(
    readonly root: string,
    content: FileContentStore,
  ) {
    this.content = content;
    this.fence = new GcFence(root);
  }

  static async open(root: string): Promise<RegistryStorage> {
    await fs.mkdir(path.join(root, 'repositories'), { recursive: true });
    await fs.mkdir(path.join(root, 'uploads'), { recursive: true });
    const content = await FileContentStore.open(path.join(root, 'content'));
    return new RegistryStorage(root, content);
  }

  repoDir(name: string): string {
    return path.join(this.root, 'repositories', name);
  }

  private layerLink(name: string, digest: string): string {
    const { alg, hex } = split(digest);
    return path.join(this.repoDir(name), '_layers', alg, hex);
  }

  private revisionLink(name: string, digest: string): string {
    const { alg, hex } = split(digest);
    return path.join(this.repoDir(name), '_manifests', 'revisions', alg, hex);
  }

  private tagFile(name: string, tag: string): string {
    return path.join(this.repoDir(name), '_manifests', 'tags', tag);
  }

  private referrersDir(name: string, subject: string): string {
    const { alg, hex } = split(subject);
    return path.join(this.repoDir(name), '_referrers', alg, hex);
  }

  // ---------------------------------------------------------------- repositories

  async repoExists(name: string): Promise<boolean> {
    try {
      return (await fs.stat(this.repoDir(name))).isDirectory() && (await this.isRepoDir(this.repoDir(name)));
    } catch {
      return false;
    }
  }

  private async isRepoDir(dir: string): Promise<boolean> {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    return names.some((n) => n === '_manifests' || n === '_layers');
  }

  /** All repository names, sorted. */
  async listRepositories(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string, prefix: string) => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      if (prefix && entries.some((e) => e.name === '_manifests' || e.name === '_layers')) out.push(prefix);
      for (const e of entries) {
        if (!e.isDirectory() || e.name.startsWith('_') || e.name.startsWith('.')) continue;
        await walk(path.join(dir, e.name), prefix ? `${prefix}/${e.name}` : e.name);
      }
    };
    await walk(path.join(this.root, 'repositories'), '');
    return out.sort();
  }

  // ---------------------------------------------------------------- blobs

  /** The blob if it is part of repository `name` (linked) and present in the store. */
  async blobInRepo(name: string, digest: string): Promise<{ digest: string; size: number } | undefined> {
    try {
      await fs.access(this.layerLink(name, digest));
    } catch {
      // A manifest of the repository is readable through the blob endpoint too, as in Distribution.
      try {
        await fs.access(this.revisionLink(name, digest));
      } catch {
        return undefined;
      }
    }
    return this.content.info(digest);
  }

  async linkBlob(name: string, digest: string): Promise<void> {
    // An empty file either exists or not: creating it is atomic; the directory sync makes it durable.
    const link = this.layerLink(name, digest);
    await fs.mkdir(path.dirname(link), { recursive: true });
    await fs.writeFile(link, '');
    await fsyncDir(path.dirname(link));
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    try {
      await fs.unlink(this.layerLink(name, digest));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Marks a blob as freshly used so a concurrent GC (which spares young blobs) leaves it alone. */
  async touch(digest: string): Promise<void> {
    const now = new Date();
    await fs.utimes(this.content.pathOf(digest), now, now).catch(() => {});
  }

  /** Large reads: 1 MiB chunks move bytes to the socket with far fewer round trips than 64 KiB. */
  readBlob(digest: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.content.pathOf(digest), { ...range, highWaterMark: 1 << 20 });
  }

  /** Streams a complete blob in, verified against `digest` (and `size` if given), and links it. */
  async putBlob(
    name: string,
    source: Readable,
    digest: string,
    size?: number,
    maxSize?: number,
  ): Promise<number> {
    // The same path as a resumable upload: hashed while written, verified, then renamed into place.
    const up = await this.startUpload(name, digestAlgorithm(digest));
    try {
      await this.appendUpload(up.id, source, size, maxSize);
      return (await this.finishUpload(name, up.id, digest)).size;
    } finally {
      await this.cancelUpload(up.id);
    }
  }

  // ---------------------------------------------------------------- manifests

  async resolveTag(name: string, tag: string): Promise<string | undefined> {
    try {
      return (await fs.readFile(this.tagFile(name, tag), 'utf8')).trim();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  /** When the tag was last written or revalidated (ms since the epoch), or undefined. */
  async tagCheckedAt(name: string, tag: string): Promise<number | undefined> {
    try {
      return (await fs.stat(this.tagFile(name, tag))).mtimeMs;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  /** Records that the tag was found unchanged upstream just now (pull-through cache). */
  async markTagChecked(name: string, tag: string): Promise<void> {
    const now = new Date();
    await fs.utimes(this.tagFile(name, tag), now, now).catch(() => {});
  }

  /** The manifest record for a digest in a repository, or undefined. */
  async manifest(name: string, digest: string): Promise<ManifestRecord | undefined> {
    let rec: { mediaType: string };
    try {
      rec = JSON.parse(await fs.readFile(this.revisionLink(name, digest), 'utf8'));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR' || err instanceof SyntaxError)
        return undefined;
      throw err;
    }
    const info = await this.content.info(digest);
    if (!info) return undefined;
    return { digest, mediaType: rec.mediaType, size: info.size };
  }

  async readManifest(digest: string): Promise<Buffer> {
    return this.content.read(digest);
  }

  async putManifest(
    name: string,
    body: Buffer,
    digest: string,
    mediaType: string,
    tags: string[],
    referrer?: { subject: string; descriptor: Descriptor },
  ): Promise<void> {
    await this.content.write(body, { digest });
    const rev = this.revisionLink(name, digest);
    await fs.mkdir(path.dirname(rev), { recursive: true });
    await writeFileAtomic(rev, JSON.stringify({ mediaType }));
    if (referrer) {
      const dir = this.referrersDir(name, referrer.subject);
      await fs.mkdir(dir, { recursive: true });
      const { alg, hex } = split(digest);
      await writeFileAtomic(path.join(dir, `${alg}-${hex}`), JSON.stringify(referrer.descriptor));
    }
    for (const tag of tags) {
      const file = this.tagFile(name, tag);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await writeFileAtomic(file, digest);
    }
  }

  async tags(name: string): Promise<string[]> {
    const names = await fs
      .readdir(path.join(this.repoDir(name), '_manifests', 'tags'))
      .catch(() => [] as string[]);
    return names.filter((n) => !n.startsWith('.')).sort();
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    try {
      await fs.unlink(this.tagFile(name, tag));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Removes a manifest from a repository with the tags that point at it and its referrer entry. */
  async deleteManifest(name: string, digest: string): Promise<boolean> {
    const rec = await this.manifest(name, digest);
    try {
      await fs.unlink(this.revisionLink(name, digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
    for (const tag of await this.tags(name)) {
      if ((await this.resolveTag(name, tag)) === digest) await this.deleteTag(name, tag);
    }
    if (rec) {
      try {
        const m = JSON.parse((await this.content.read(digest)).toString('utf8')) as { subject?: Descriptor };
        if (m.subject && typeof m.subject.digest === 'string') {
          const { alg, hex } = split(digest);
          await fs.rm(path.join(this.referrersDir(name, m.subject.digest), `${alg}-${hex}`), { force: true });
        }
      } catch {
        /* an unparsable manifest has no referrer entry */
      }
    }
    return true;
  }

  async referrers(name: string, subject: string): Promise<Descriptor[]> {
    const dir = this.referrersDir(name, subject);
    const files = await fs.readdir(dir).catch(() => [] as string[]);
    const out: Descriptor[] = [];
    for (const f of files.sort()) {
      if (f.startsWith('.')) continue;
      try {
        const d = JSON.parse(await fs.readFile(path.join(dir, f), 'utf8')) as Descriptor;
        // Only manifests still present in the repository.
        if (await this.manifest(name, d.digest)) out.push(d);
      } catch {
        /* skip a record being replaced */
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- uploads

  private uploadDir(id: string): string {
    return path.join(this.root, 'uploads', id);
  }

  async startUpload(name: string, algorithm: Algorithm): Promise<UploadState> {
    const id = randomUUID();
    const dir = this.uploadDir(id);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'data'), '');
    await writeFileAtomic(
      path.join(dir, 'info.json'),
      JSON.stringify({ name, algorithm, started: new Date().toISOString() }),
    );
    this.live.set(id, { hash: createHash(algorithm), size: 0, algorithm, queue: Promise.resolve() });
    return { id, name, size: 0, algorithm };
  }

  /** Upload state, or a BLOB_UPLOAD_UNKNOWN error if there is no such upload for this repository. */
  async upload(name: string, id: string): Promise<UploadState> {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    let info: { name: string; algorithm: Algorithm };
    try {
      info = JSON.parse(await fs.readFile(path.join(this.uploadDir(id), 'info.json'), 'utf8'));
    } catch {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    }
    if (info.name !== name) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    // The file is the truth: another replica on this root may have appended since.
    const st = await fs.stat(path.join(this.uploadDir(id), 'data')).catch(() => undefined);
    if (!st) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    return { id, name, size: st.size, algorithm: info.algorithm };
  }

  /** Runs `fn` with exclusive access to one upload (within this process). */
  async withUpload<T>(id: string, fn: () => Promise<T>): Promise<T> {
    let live = this.live.get(id);
    if (!live) {
      // After a restart, or an upload started by another replica on this root.
      let info: { algorithm: Algorithm };
      try {
        info = JSON.parse(await fs.readFile(path.join(this.uploadDir(id), 'info.json'), 'utf8'));
      } catch {
        throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
      }
      live = this.live.get(id) ?? { hash: createHash(info.algorithm), size: -1, algorithm: info.algorithm, queue: Promise.resolve() };
      this.live.set(id, live);
    }
    const l = live;
    const step = async () => {
      await this.resync(id, l);
      return fn();
    };
    const run = l.queue.then(step, step);
    l.queue = run.catch(() => {});
    return run;
  }

  /**
   * Brings the running hash up to the file: replicas share the root, so another process may have
   * appended to this upload since (or it is new here); the hash is then rebuilt from the bytes.
   */
  private async resync(id: string, live: LiveUpload): Promise<void> {
    const file = path.join(this.uploadDir(id), 'data');
    const st = await fs.stat(file).catch(() => undefined);
    if (!st) {
      this.live.delete(id);
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    }
    if (st.size === live.size) return;
    const hash = createHash(live.algorithm);
    let size = 0;
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    live.hash = hash;
    live.size = size;
  }

  /**
   * Appends a request body to an upload. `expectedLength` (from Content-Range or Content-Length)
   * must be met exactly; on any failure (short body, client gone) the upload is rolled back to
   * where it was, so a retried chunk starts from a known offset.
   */
  async appendUpload(
    id: string,
    source: Readable,
    expectedLength?: number,
    maxSize?: number,
  ): Promise<number> {
    const live = this.live.get(id);
    if (!live) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    const file = path.join(this.uploadDir(id), 'data');
    const before = live.size;
    const saved = live.hash.copy();
    let written = 0;
    const out = createWriteStream(file, { flags: 'r+', start: before, highWaterMark: 4 << 20 });
    try {
      // A plain Transform (not an async generator): one callback per chunk, no promise per chunk.
      const meter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          written += chunk.length;
          if (maxSize !== undefined && before + written > maxSize) {
            cb(
              new RegistryError('SIZE_INVALID', `blob exceeds the limit of ${maxSize} bytes`, undefined, 413),
            );
            return;
          }
          if (expectedLength !== undefined && written > expectedLength) {
            cb(
              new RegistryError('SIZE_INVALID', `chunk is longer than the ${expectedLength} bytes announced`),
            );
            return;
          }
          live.hash.update(chunk);
          cb(null, chunk);
        },
      });
      await pipeline(source, meter, out);
      if (expectedLength !== undefined && written !== expectedLength) {
        throw new RegistryError(
          'SIZE_INVALID',
          `chunk has ${written} bytes, ${expectedLength} were announced`,
        );
      }
      live.size = before + written;
      return live.size;
    } catch (err) {
      live.hash = saved;
      live.size = before;
      await fs.truncate(file, before).catch(() => {});
      throw err;
    }
  }

  /** Verifies the upload against `digest`, moves it into the store and links it to the repository. */
  async finishUpload(name: string, id: string, digest: string): Promise<{ size: number }> {
    const live = this.live.get(id);
    if (!live) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    const file = path.join(this.uploadDir(id), 'data');
    const algorithm = digestAlgorithm(digest);
    let actual: string;
    if (algorithm === live.algorithm) {
      actual = `${algorithm}:${live.hash.copy().digest('hex')}`;
    } else {
      const h = createHash(algorithm);
      for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
      actual = `${algorithm}:${h.digest('hex')}`;
    }
    if (actual !== digest) {
      throw new RegistryError('DIGEST_INVALID', `digest mismatch: expected ${digest}, got ${actual}`, {
        digest,
      });
    }
    const fh = await fs.open(file, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const size = live.size;
    // Fenced: a sweep must not delete the blob between "already stored" and the link.
    await this.fence.write(async () => {
      await this.content.adoptVerified(file, { digest, size });
      await this.linkBlob(name, digest);
      // The bytes may have been in the store already (and old): mark them fresh so a later gc's
      // grace period keeps them until the manifest that needs them arrives.
      await this.touch(digest);
    });
    await this.cancelUpload(id);
    return { size };
  }

  async cancelUpload(id: string): Promise<void> {
    this.live.delete(id);
    await fs.rm(this.uploadDir(id), { recursive: true, force: true });
  }

  /** Removes uploads untouched for longer than `maxAgeMs`. */
  async purgeUploads(maxAgeMs: number): Promise<number> {
    const dir = path.join(this.root, 'uploads');
    let n = 0;
    for (const id of await fs.readdir(dir).catch(() => [] as string[])) {
      const st = await fs.stat(path.join(dir, id, 'data')).catch(() => undefined);
      const mtime = st?.mtimeMs ?? 0;
      if (Date.now() - mtime > maxAgeMs) {
        this.live.delete(id);
        await fs.rm(path.join(dir, id), { recursive: true, force: true });
        n++;
      }
    }
    if (n) await fsyncDir(dir).catch(() => {});
    return n;
  }
}
