/**
 * The registry client as the API and the builder call it: `pull` and `push` of a parsed reference,
 * with progress as Docker's JSON messages, and `ensureImage` (the "resolve or pull" of `docker run
 * --pull` and `FROM`). Docker Hub names go to the configured mirrors in order, falling back to the
 * next on failure. Pulled images land in the image store; pushed ones are read from it.
 */
import type { ImageService } from '../images/index.js';
import type { LayerStore } from '../layers/index.js';
import { notFound } from '../util/errors.js';
import type { JsonMessageStream } from '../util/json-message.js';
import { log } from '../util/log.js';
import { familiar, type Reference, withDefaultTag } from '../util/reference.js';
import { type Credentials, remoteOf } from './client.js';
import type { LayerCompression } from './compress.js';
import { LayerDownloads } from './layer-downloads.js';
import { pullFrom } from './pull.js';
import { push } from './push.js';
import { type SearchFilters, type SearchResult, search } from './search.js';
import type { LayerMetadata } from './layer-metadata.js';
import type { RegistryInfo, RegistrySettings } from './registries.js';

export type { Credentials };

export type PullPolicy = 'always' | 'missing' | 'never';

export interface DistributionDeps {
  images: ImageService;
  layers: LayerStore;
  registries: RegistrySettings;
  /** Compressed digests of layers, per diff ID (what a second push skips). */
  metadata: LayerMetadata;
  /** dockerd's `max-concurrent-downloads` (default 3). */
  maxConcurrentDownloads: number;
  /** dockerd's `max-concurrent-uploads` (default 5). */
  maxConcurrentUploads: number;
}

export class DistributionService {
  /** Layer downloads in progress, shared by concurrent pulls. */
  private readonly downloads = new LayerDownloads();

  constructor(private readonly deps: DistributionDeps) {}

  /**
   * Pulls `ref` (a tag, `latest` when it names none, or a digest); returns the image ID. A Docker
   * Hub name is tried on each mirror in turn; the last mirror's error is the one reported.
   */
  async pull(ref: Reference, creds: Credentials, out: JsonMessageStream): Promise<string> {
    const { host, repo, reference } = remoteOf(ref);
    const endpoints = this.deps.registries.pullEndpoints(host, familiar(ref));
    const pullDeps = { ...this.deps, maxDownloads: this.deps.maxConcurrentDownloads, downloads: this.downloads };
    for (const [i, ep] of endpoints.entries()) {
      try {
        return await pullFrom(pullDeps, { base: ep.base, remoteRepo: repo, reference, ref }, creds, out);
      } catch (err) {
        if (i === endpoints.length - 1) throw err;
        log.warn('pull from mirror failed; trying the next endpoint', {
          mirror: ep.base.href,
          ref: familiar(ref),
          err: (err as Error).message,
        });
      }
    }
    throw new Error('unreachable: no pull endpoint');
  }

  /**
   * The image `ref` names, pulled first when the policy says so (`docker run --pull`, `FROM`):
   * `missing` pulls only when there is no local image, `always` pulls every time, `never` only
   * looks. Returns the image ID.
   */
  async ensureImage(
    ref: Reference,
    policy: PullPolicy,
    creds: Credentials,
    out: JsonMessageStream,
  ): Promise<string> {
    const r = withDefaultTag(ref);
    if (policy !== 'always') {
      const local = await this.deps.images.resolve(familiar(r)).catch(() => undefined);
      if (local) return local.id;
      if (policy === 'never') throw notFound(`No such image: ${familiar(r)}`);
    }
    return this.pull(r, creds, out);
  }

  /** Pushes one tag, or every local tag of the repository when `ref` names none (as Docker). */
  async push(
    ref: Reference,
    creds: Credentials,
    out: JsonMessageStream,
    opts: { compression?: LayerCompression } = {},
  ): Promise<void> {
    const tags = ref.tag
      ? [ref.tag]
      : this.deps.images
          .list()
          .flatMap((i) => i.repoTags)
          .filter((t) => t.startsWith(`${ref.repo}:`))
          .map((t) => t.slice(ref.repo.length + 1));
    if (tags.length === 0) throw notFound(`An image does not exist locally with the tag: ${ref.repo}`);
    const { host } = remoteOf(ref);
    const ep = this.deps.registries.pushEndpoint(host, ref.repo);
    const pushDeps = { ...this.deps, maxUploads: this.deps.maxConcurrentUploads, compression: opts.compression };
    for (const tag of tags) await push(pushDeps, ep.base, { repo: ref.repo, tag }, creds, out);
  }

  /** `docker search`: names in the catalog of the registry the term names (or of the mirrors). */
  search(term: string, limit: number, filters: SearchFilters, creds: Credentials): Promise<SearchResult[]> {
    return search(this.deps.registries, term, limit, filters, creds);
  }

  /** `RegistryConfig` of `info`. */
  registryInfo(): RegistryInfo {
    return this.deps.registries.info();
  }
}
