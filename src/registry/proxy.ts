/**
 * Pull-through cache (`proxy` in the config), with CNCF distribution's semantics: a manifest or
 * blob asked for and not held yet is fetched from the upstream registry, stored, and served from
 * the store from then on; a tag is asked upstream again once its TTL has passed (the manifest is
 * fetched only when the tag moved); with the upstream down or failing, what is cached is served.
 * Pushes and deletes are refused by the server in this mode. One fetch per blob at a time: requests
 * for a blob already on its way wait for it.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { RepositoryClient } from '../distribution/client.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../model/media-types.js';
import type { ProxyConfig } from './config.js';
import { RegistryError, regErr } from './errors.js';
import type { RegistryStorage } from './storage.js';

const ACCEPT = [...MANIFEST_TYPES, ...INDEX_TYPES].join(', ');

/** The server's logger, as far as the cache uses it. */
interface Logger {
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void;
}

const upstreamDown = (what: string, err: unknown) =>
  new RegistryError(
    'UNSUPPORTED',
    `the upstream registry cannot serve ${what}: ${err instanceof Error ? err.message : String(err)}`,
    undefined,
    503,
  );

export class PullThrough {
  private readonly base: URL;
  private readonly fetching = new Map<string, Promise<void>>();

  constructor(
    private readonly cfg: ProxyConfig,
    private readonly storage: RegistryStorage,
    private readonly logger: Logger,
  ) {
    this.base = new URL(cfg.remoteurl);
  }

  private client(name: string): RepositoryClient {
    return new RepositoryClient(this.base, name, { username: this.cfg.username, password: this.cfg.password }, 'pull');
  }

  /** Makes `name`'s manifest `ref` (tag or digest) present in the store, fresh enough for its TTL. */
  async ensureManifest(name: string, ref: string): Promise<void> {
    const byDigest = ref.includes(':');
    if (byDigest) {
      if (await this.storage.manifest(name, ref)) return;
      return this.once(`${name}@${ref}`, () => this.fetchManifest(name, ref));
    }
    const checked = await this.storage.tagCheckedAt(name, ref);
    const local = checked === undefined ? undefined : await this.storage.resolveTag(name, ref);
    if (local && checked !== undefined && Date.now() - checked < this.cfg.ttl * 1000) return;
    try {
      await this.once(`${name}:${ref}`, () => this.refreshTag(name, ref, local));
    } catch (err) {
      if (!local) throw err;
      // Upstream down or failing: the cached tag is served as it is.
      this.logger.log('warn', 'upstream unavailable; serving the cached tag', {
        repository: name,
        tag: ref,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** Makes blob `digest` of `name` present in the store (for HEAD and range requests). */
  async ensureBlob(name: string, digest: string): Promise<void> {
    const live = await this.openBlob(name, digest);
    if (!live) return;
    live.body.resume(); // nobody reads this copy: the stored one takes the bytes
    await live.stored;
  }

  /**
   * Blob `digest` of `name`: undefined when the store has it (serve it from there), or the
   * upstream's bytes as they arrive, stored at the same time, so a cold pull is not held up by the
   * store. The bytes are checked against the digest by the store; a mismatch breaks the answer.
   */
  async openBlob(
    name: string,
    digest: string,
  ): Promise<{ size?: number; body: Readable; stored: Promise<void> } | undefined> {
    if (await this.storage.blobInRepo(name, digest)) return undefined;
    const key = `blob ${digest}`;
    const pending = this.fetching.get(key);
    if (pending) {
      await pending;
      await this.storage.fence.write(async () => {
        if (!(await this.storage.blobInRepo(name, digest)) && (await this.storage.content.info(digest)))
          await this.storage.linkBlob(name, digest);
      });
      return undefined;
    }
    let settle!: (err?: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    done.catch(() => {});
    this.fetching.set(key, done);
    const finish = (err?: unknown) => {
      this.fetching.delete(key);
      settle(err);
    };
    try {
      // Held for another repository of this cache: the same upstream vouched for the bytes.
      const cached = await this.storage.fence.write(async () => {
        if (!(await this.storage.content.info(digest))) return false;
        await this.storage.linkBlob(name, digest);
        return true;
      });
      if (cached) {
        finish();
        return undefined;
      }
      const r = await this.client(name)
        .fetch(`blobs/${digest}`)
        .catch((err: unknown) => {
          throw upstreamDown(`blob ${digest}`, err);
        });
      if (r.status === 404) {
        await r.body?.cancel();
        throw regErr('BLOB_UNKNOWN', undefined, { digest });
      }
      if (!r.ok || !r.body) {
        await r.body?.cancel();
        throw upstreamDown(`blob ${digest}`, new Error(`status ${r.status}`));
      }
      const size = Number(r.headers.get('content-length') ?? '') || undefined;
      const source = Readable.fromWeb(r.body as WebReadableStream<Uint8Array>);
      const toStore = new PassThrough();
      // The client's copy holds back its last chunk until the blob is stored: a client that got
      // every byte can rely on the next request being served from the store.
      let held: Buffer | undefined;
      const toClient = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          const prev = held;
          held = chunk;
          cb(null, prev);
        },
        flush(cb) {
          done.then(
            () => cb(null, held),
            (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
          );
        },
      });
      source.on('error', (e) => {
        toStore.destroy(e);
        toClient.destroy(e);
      });
      // A client that goes away unpipes itself; the store keeps reading.
      source.pipe(toStore);
      source.pipe(toClient);
      this.storage
        .putBlob(name, toStore, digest, size)
        .then(() => {
          this.logger.log('info', 'cached blob from upstream', { repository: name, digest, size });
          finish();
        })
        .catch((err: unknown) => {
          toClient.destroy(err instanceof Error ? err : new Error(String(err)));
          finish(err);
        });
      return { size, body: toClient, stored: done };
    } catch (err) {
      finish(err);
      throw err;
    }
  }

  /** The upstream's tag list, or undefined when it cannot be had (the local list is served then). */
  async tags(name: string): Promise<string[] | undefined> {
    try {
      const r = await this.client(name).fetch('tags/list');
      if (!r.ok) {
        await r.body?.cancel();
        return undefined;
      }
      const body = (await r.json()) as { tags?: string[] | null };
      return body.tags ?? [];
    } catch {
      return undefined;
    }
  }

  private async once(key: string, fn: () => Promise<void>): Promise<void> {
    let p = this.fetching.get(key);
    if (!p) {
      p = fn().finally(() => this.fetching.delete(key));
      this.fetching.set(key, p);
    }
    return p;
  }

  /** Asks the upstream what the tag points at; fetches the manifest only when it moved. */
  private async refreshTag(name: string, tag: string, local: string | undefined): Promise<void> {
    const client = this.client(name);
    if (local) {
      const head = await client.fetch(`manifests/${tag}`, { method: 'HEAD', headers: { Accept: ACCEPT } }).catch((err: unknown) => {
        throw upstreamDown(`${name}:${tag}`, err);
      });
      if (head.ok && head.headers.get('docker-content-digest') === local) {
        await this.storage.markTagChecked(name, tag);
        return;
      }
      if (!head.ok && head.status !== 404) throw upstreamDown(`${name}:${tag}`, new Error(`status ${head.status}`));
    }
    await this.fetchManifest(name, tag);
  }

  private async fetchManifest(name: string, ref: string): Promise<void> {
    const r = await this.client(name)
      .fetch(`manifests/${ref}`, { headers: { Accept: ACCEPT } })
      .catch((err: unknown) => {
        throw upstreamDown(`${name}:${ref}`, err);
      });
    if (r.status === 404) {
      await r.body?.cancel();
      throw regErr('MANIFEST_UNKNOWN', undefined, ref.includes(':') ? { digest: ref } : { tag: ref });
    }
    if (r.status === 401 || r.status === 403) {
      await r.body?.cancel();
      throw regErr('DENIED', `the upstream registry refused ${name}:${ref} (status ${r.status})`);
    }
    if (!r.ok) {
      await r.body?.cancel();
      throw upstreamDown(`${name}:${ref}`, new Error(`status ${r.status}`));
    }
    const body = Buffer.from(await r.arrayBuffer());
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    if (ref.includes(':') && ref !== digest)
      throw upstreamDown(`${name}@${ref}`, new Error(`the upstream sent a manifest hashing to ${digest}`));
    let json: { mediaType?: string; manifests?: unknown };
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw upstreamDown(`${name}:${ref}`, new Error('the upstream sent a manifest that is not JSON'));
    }
    const mediaType =
      json.mediaType || (r.headers.get('content-type') ?? '').split(';')[0] || (Array.isArray(json.manifests) ? INDEX_TYPES[0] : MANIFEST_TYPES[0]);
    await this.storage.fence.write(() =>
      this.storage.putManifest(name, body, digest, mediaType, ref.includes(':') ? [] : [ref]),
    );
    this.logger.log('info', 'cached manifest from upstream', { repository: name, ref, digest });
  }
}
