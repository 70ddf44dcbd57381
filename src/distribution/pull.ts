/**
 * `docker pull` (`POST /images/create?fromImage=`) from one endpoint: manifest (an index resolved to
 * this platform), config, then the layers, `maxDownloads` at a time, each streamed from the
 * registry through its digest check into the layer store (unpacked as it arrives; gzip and
 * uncompressed layers). Layers already present are not fetched again, nor layers another pull of
 * this daemon is downloading (this one waits for it). Progress goes out as Docker's
 * JSON messages: `Pulling fs layer`, `Waiting`, `Downloading` (current/total), `Verifying Checksum`,
 * `Download complete`, `Extracting`, `Pull complete`, `Digest:`, `Status:`.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { ImageService } from '../images/index.js';
import type { LayerStore } from '../layers/index.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../model/media-types.js';
import { BerthError, invalid, notFound } from '../util/errors.js';
import type { JsonMessageStream } from '../util/json-message.js';
import { log } from '../util/log.js';
import { Limiter } from '../util/mutex.js';
import { goArch } from '../util/platform.js';
import type { Reference } from '../util/reference.js';
import { type Credentials, RepositoryClient } from './client.js';
import type { LayerDownloads } from './layer-downloads.js';
import type { LayerMetadata } from './layer-metadata.js';
import { counting, sendProgress } from './progress.js';

const ACCEPT = [...MANIFEST_TYPES, ...INDEX_TYPES].join(', ');

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface PullDeps {
  images: ImageService;
  layers: LayerStore;
  metadata: LayerMetadata;
  maxDownloads: number;
  /** Downloads shared between the pulls of this daemon (none: each pull downloads alone). */
  downloads?: LayerDownloads;
}

/** One pull attempt: which registry, which repository path there, which tag or digest. */
export interface PullTarget {
  base: URL;
  /** Path on the registry: `library/busybox`. */
  remoteRepo: string;
  /** Tag or digest. */
  reference: string;
  /** The familiar reference the image is stored under. */
  ref: Reference;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const short = (digest: string) => digest.replace(/^sha\d+:/, '').slice(0, 12);

/**
 * Passes bytes through and fails at the end unless they hash to `digest`; `onEnd` runs just
 * before the check (for `Verifying Checksum`), `onVerified` after it passed.
 */
function verifying(digest: string, onEnd: () => void, onVerified: () => void): Transform {
  const [alg, hex] = digest.split(':');
  const hash = createHash(alg === 'sha512' ? 'sha512' : 'sha256');
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      onEnd();
      const got = hash.digest('hex');
      if (got !== hex) return cb(invalid(`digest mismatch for ${digest}: the registry sent ${alg}:${got}`));
      onVerified();
      cb();
    },
  });
}

async function fetchManifest(
  client: RepositoryClient,
  ref: string,
  name: string,
): Promise<{ bytes: Buffer; type: string; digest: string }> {
  const r = await client.fetch(`manifests/${ref}`, { headers: { Accept: ACCEPT } });
  if (r.status === 404)
    throw notFound(`manifest for ${name}:${ref} not found: manifest unknown: manifest unknown`);
  if (r.status === 401 || r.status === 403)
    throw new BerthError(
      'forbidden',
      `pull access denied for ${name}, repository does not exist or may require 'docker login'`,
    );
  if (!r.ok) throw new BerthError('system', `error pulling ${name}:${ref}: registry answered ${r.status}`);
  const bytes = Buffer.from(await r.arrayBuffer());
  const digest = sha256(bytes);
  if (ref.includes(':') && ref !== digest)
    throw invalid(`manifest digest mismatch: asked for ${ref}, got ${digest}`);
  let json: { mediaType?: string };
  try {
    json = JSON.parse(bytes.toString()) as { mediaType?: string };
  } catch {
    throw invalid(`error pulling ${name}:${ref}: the registry answered a manifest that is not JSON`);
  }
  const type = (r.headers.get('content-type') ?? '').split(';')[0] || json.mediaType || '';
  return { bytes, type, digest };
}

/** The manifest of an index that runs here: linux, this architecture (and variant when given). */
function pickPlatform(manifests: Descriptor[]): Descriptor | undefined {
  const arch = goArch();
  const candidates = manifests.filter((m) => m.platform?.os === 'linux' && m.platform?.architecture === arch);
  const variant = arch === 'arm64' ? 'v8' : arch === 'arm' ? 'v7' : undefined;
  return candidates.find((m) => !m.platform?.variant || m.platform.variant === variant) ?? candidates[0];
}

export async function pullFrom(
  deps: PullDeps,
  target: PullTarget,
  creds: Credentials,
  out: JsonMessageStream,
): Promise<string> {
  const { remoteRepo, reference } = target;
  const name = target.ref.repo;
  const byDigest = reference.includes(':');
  const client = new RepositoryClient(target.base, remoteRepo, creds, 'pull');
  // As Docker: nothing is said before the manifest is found, so a failure up to here is
  // answered with an HTTP error status instead of inside a 200 stream (and a mirror skipped
  // before this leaves no trace).
  const top = await fetchManifest(client, reference, name);
  out.status(`Pulling from ${remoteRepo}`, reference);
  let manifest = top;
  const topJson = JSON.parse(top.bytes.toString()) as { manifests?: Descriptor[] };
  if (INDEX_TYPES.includes(top.type) || Array.isArray(topJson.manifests)) {
    const pick = pickPlatform(topJson.manifests ?? []);
    if (!pick) throw notFound(`no matching manifest for linux/${goArch()} in the manifest list entries`);
    manifest = await fetchManifest(client, pick.digest, name);
  }
  const m = JSON.parse(manifest.bytes.toString()) as { config: Descriptor; layers: Descriptor[] };
  if (!m.config?.digest || !Array.isArray(m.layers))
    throw invalid(`unsupported manifest for ${name}: ${manifest.type}`);
  const cr = await client.fetch(`blobs/${m.config.digest}`);
  if (!cr.ok)
    throw new BerthError('system', `error pulling config ${m.config.digest}: registry answered ${cr.status}`);
  const configBytes = Buffer.from(await cr.arrayBuffer());
  if (sha256(configBytes) !== m.config.digest) throw invalid(`config digest mismatch for ${m.config.digest}`);
  const config = JSON.parse(configBytes.toString()) as { rootfs?: { diff_ids?: string[] } };
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== m.layers.length)
    throw invalid(`manifest and config disagree on the number of layers for ${name}`);
  const existing = await deps.images.resolve(sha256(configBytes)).catch(() => undefined);
  const held: string[] = [];
  try {
    if (!existing) await fetchLayers(deps, client, m.layers, diffIds, out, held);
    const image = existing ?? (await deps.images.createFromConfig(configBytes));
    if (!byDigest) await deps.images.setRef(image.id, `${name}:${reference}`);
    await deps.images.setRef(image.id, `${name}@${top.digest}`);
    out.status(`Digest: ${top.digest}`);
    const shown = byDigest ? `${name}@${reference}` : `${name}:${reference}`;
    out.status(
      existing ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}`,
    );
    return image.id;
  } finally {
    for (const d of held) deps.images.release(d);
  }
}

/** Fetches the layers not present yet, `maxDownloads` at a time; held diff IDs go into `held`. */
async function fetchLayers(
  deps: PullDeps,
  client: RepositoryClient,
  layers: Descriptor[],
  diffIds: string[],
  out: JsonMessageStream,
  held: string[],
): Promise<void> {
  const todo: { layer: Descriptor; diffId: string }[] = [];
  const seen = new Set<string>();
  for (const [i, layer] of layers.entries()) {
    if (seen.has(diffIds[i])) continue; // the same layer twice in one image is fetched once
    seen.add(diffIds[i]);
    if (deps.layers.layerInfo(diffIds[i])) out.status('Already exists', short(layer.digest));
    else {
      out.status('Pulling fs layer', short(layer.digest));
      todo.push({ layer, diffId: diffIds[i] });
    }
  }
  const limiter = new Limiter(deps.maxDownloads);
  // One failed layer stops the others: their requests are aborted and nothing half-pulled stays.
  const abort = new AbortController();
  const one = async (layer: Descriptor, diffId: string): Promise<void> => {
    const id = short(layer.digest);
    // Another pull is downloading this layer: wait for it rather than fetch the bytes twice.
    for (let shared = deps.downloads?.find(diffId); shared; shared = deps.downloads?.find(diffId)) {
      out.status('Waiting', id);
      await shared.catch(() => {});
      if (deps.layers.layerInfo(diffId)) {
        deps.images.hold(diffId); // ours now, as if applied here
        held.push(diffId);
        out.status('Download complete', id);
        out.status('Pull complete', id);
        return;
      }
      // It failed (or the layer is gone again): download it here, unless yet another pull does.
    }
    const done = deps.downloads?.start(diffId);
    try {
      if (limiter.full) out.status('Waiting', id);
      await limiter.run(async () => {
        if (abort.signal.aborted) throw abort.signal.reason;
        held.push(await fetchLayer(deps, client, layer, diffId, out, abort.signal));
      });
      done?.();
    } catch (err) {
      done?.(err);
      throw err;
    }
  };
  const results = await Promise.allSettled(
    todo.map(({ layer, diffId }) =>
      one(layer, diffId).catch((err: unknown) => {
        abort.abort(err);
        throw err;
      }),
    ),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** How often a layer download that broke off is resumed (HTTP range) before the pull fails. */
const RESUMES = 3;

/**
 * The layer's bytes; when the connection breaks mid-body, the rest is asked for with
 * `Range: bytes=<received>-` and the download goes on where it stopped (a registry that answers
 * anything but 206 ends the pull with the original error).
 */
async function* resumable(
  client: RepositoryClient,
  digest: string,
  first: Response,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  let r = first;
  let received = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const chunk of Readable.fromWeb(r.body as WebReadableStream<Uint8Array>)) {
        received += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      return;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (attempt >= RESUMES) throw brokenConnection(digest, err as Error);
      log.warn('layer download broke off; resuming', { digest, received, err: (err as Error).message });
      const next = await client.fetch(`blobs/${digest}`, { signal, headers: { Range: `bytes=${received}-` } });
      if (next.status !== 206 || !next.body) {
        await next.body?.cancel();
        throw brokenConnection(digest, err as Error);
      }
      r = next;
    }
  }
}

const brokenConnection = (digest: string, err: Error) =>
  new BerthError(
    'unavailable',
    `error pulling layer ${digest}: the registry connection broke: ${err.cause instanceof Error ? err.cause.message : err.message}`,
  );

async function fetchLayer(
  deps: PullDeps,
  client: RepositoryClient,
  layer: Descriptor,
  diffId: string,
  out: JsonMessageStream,
  signal: AbortSignal,
): Promise<string> {
  const id = short(layer.digest);
  const r = await client.fetch(`blobs/${layer.digest}`, { signal });
  if (!r.ok || !r.body)
    throw new BerthError('system', `error pulling layer ${layer.digest}: registry answered ${r.status}`);
  const total = layer.size ?? Number(r.headers.get('content-length') ?? 0);
  sendProgress(out, 'Downloading', id, 0, total);
  const body = Readable.from(resumable(client, layer.digest, r, signal), { objectMode: false });
  const verified = body.pipe(counting(out, 'Downloading', id, total)).pipe(
    verifying(
      layer.digest,
      () => out.status('Verifying Checksum', id),
      () => {
        out.status('Download complete', id);
        // The layer is unpacked while it streams in; what remains is the end of the tar.
        sendProgress(out, 'Extracting', id, total, total);
      },
    ),
  );
  body.on('error', (err) => verified.destroy(err));
  const got = await deps.images.applyHeld(verified, diffId).catch((err: Error) => {
    if (signal.aborted) throw signal.reason;
    throw err;
  });
  out.status('Pull complete', id);
  // A later push to this registry finds the blob by this digest instead of compressing again.
  if (layer.mediaType)
    await deps.metadata.add(diffId, { digest: layer.digest, size: layer.size ?? total, mediaType: layer.mediaType }, `${client.host}/${client.repo}`);
  return got;
}
