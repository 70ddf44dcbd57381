/**
 * `docker push` (`POST /images/{name}/push`) of one tag, as Docker pushes: each layer gzip-compressed
 * (or zstd with `berth push --compression zstd`, then under an OCI manifest) and streamed (POST, PATCH, PUT with the digest computed on the way), `maxUploads` at a time; a
 * layer the registry already holds in its compressed form is not sent (`Layer already exists`), one
 * held by another repository of the same registry is mounted (`Mounted from …`); the compressed
 * digests are remembered per diff ID, so a second push compresses nothing. Then the config and a
 * Docker schema 2 manifest under the tag. Progress as Docker's JSON messages.
 */
import { createHash } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';
import type { ImageService } from '../images/index.js';
import type { LayerStore } from '../layers/index.js';
import { MediaType } from '../model/media-types.js';
import { BerthError, notFound } from '../util/errors.js';
import type { JsonMessageStream } from '../util/json-message.js';
import { Limiter } from '../util/mutex.js';
import { familiar, type Reference } from '../util/reference.js';
import { type Credentials, RepositoryClient, registryMessage, remoteOf } from './client.js';
import { compressStream, type LayerCompression } from './compress.js';
import type { CompressedLayer, LayerMetadata } from './layer-metadata.js';
import { counting, sendProgress } from './progress.js';

export interface PushDeps {
  images: ImageService;
  layers: LayerStore;
  metadata: LayerMetadata;
  maxUploads: number;
  /** gzip (Docker's, the default) or zstd. */
  compression?: LayerCompression;
}

interface Blob {
  mediaType: string;
  digest: string;
  size: number;
}

const GZIP_TYPES: readonly string[] = [MediaType.dockerLayerGzip, MediaType.ociLayerGzip];
const ZSTD_TYPES: readonly string[] = [MediaType.ociLayerZstd];
const short = (digest: string) => digest.replace(/^sha\d+:/, '').slice(0, 12);

const denied = () => new BerthError('forbidden', 'denied: requested access to the resource is denied');

async function hasBlob(client: RepositoryClient, digest: string): Promise<boolean> {
  const r = await client.fetch(`blobs/${digest}`, { method: 'HEAD' });
  return r.ok;
}

/** Starts an upload session, or mounts `mount` from `from` (true when mounted). */
async function startUpload(
  client: RepositoryClient,
  mount?: { digest: string; from: string },
): Promise<{ mounted: true } | { mounted: false; location: URL }> {
  const q = mount ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}` : '';
  const r = await client.fetch(`blobs/uploads/${q}`, { method: 'POST' });
  if (r.status === 401 || r.status === 403) {
    await r.body?.cancel();
    throw denied();
  }
  if (r.status !== 202 && !(mount && r.status === 201))
    throw new BerthError('system', `blob upload failed to start: registry answered ${r.status}: ${await registryMessage(r)}`);
  await r.body?.cancel();
  if (mount && r.status === 201) return { mounted: true };
  return { mounted: false, location: new URL(r.headers.get('location') ?? '', client.base) };
}

/** Streams `body` into the session (PATCH), then closes it (PUT) under the digest it hashed to. */
async function streamUpload(client: RepositoryClient, location: URL, body: Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  body.on('error', (e) => hashing.destroy(e));
  const patch = await client.upload(location.toString(), 'PATCH', body.pipe(hashing), {
    'Content-Type': 'application/octet-stream',
  });
  if (patch.status === 401 || patch.status === 403) throw denied();
  if (patch.status !== 202)
    throw new BerthError('system', `blob upload failed: registry answered ${patch.status} ${patch.text}`);
  const digest = `sha256:${hash.digest('hex')}`;
  const done = new URL(patch.headers.location ?? location.toString(), client.base);
  done.searchParams.set('digest', digest);
  const put = await client.fetch(done.toString(), { method: 'PUT', headers: { 'Content-Length': '0' } });
  if (put.status !== 201)
    throw new BerthError('system', `blob upload of ${digest} failed: registry answered ${put.status} ${await put.text()}`);
  await put.body?.cancel();
  return { digest, size };
}

/** A small blob in one request (POST, then PUT with the body). */
async function uploadBytes(client: RepositoryClient, digest: string, bytes: Buffer): Promise<void> {
  const start = await startUpload(client);
  if (start.mounted) return;
  start.location.searchParams.set('digest', digest);
  const put = await client.fetch(start.location.toString(), {
    method: 'PUT',
    body: bytes as unknown as BodyInit,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  if (put.status !== 201)
    throw new BerthError('system', `blob upload of ${digest} failed: registry answered ${put.status} ${await put.text()}`);
  await put.body?.cancel();
}

/** Gets one layer into the repository: already there, mounted, or compressed and uploaded. */
async function pushLayer(
  deps: PushDeps,
  client: RepositoryClient,
  diffId: string,
  out: JsonMessageStream,
): Promise<Blob> {
  const id = short(diffId);
  const here = `${client.host}/${client.repo}`;
  const compression = deps.compression ?? 'gzip';
  const types = compression === 'zstd' ? ZSTD_TYPES : GZIP_TYPES;
  // Bytes pulled as an OCI gzip layer are the same gzip under Docker's name.
  const mediaType = compression === 'zstd' ? MediaType.ociLayerZstd : MediaType.dockerLayerGzip;
  const known = deps.metadata.get(diffId).filter((k) => types.includes(k.mediaType));
  const blobOf = (k: CompressedLayer): Blob => ({ mediaType, digest: k.digest, size: k.size });
  for (const k of known) {
    if (await hasBlob(client, k.digest)) {
      out.status('Layer already exists', id);
      await deps.metadata.add(diffId, k, here);
      return blobOf(k);
    }
  }
  let session: URL | undefined;
  for (const k of known) {
    const from = k.repos
      .filter((r) => r.startsWith(`${client.host}/`) && r !== here)
      .map((r) => r.slice(client.host.length + 1))
      .pop();
    if (!from) continue;
    const s = await startUpload(client, { digest: k.digest, from });
    if (s.mounted) {
      out.status(`Mounted from ${from}`, id);
      await deps.metadata.add(diffId, k, here);
      return blobOf(k);
    }
    session = s.location; // not mountable: the registry opened an upload session instead
    break;
  }
  session ??= ((await startUpload(client)) as { location: URL }).location;
  const total = deps.layers.layerInfo(diffId)?.size ?? 0;
  out.status('Pushing', id);
  const compressed = compressStream(
    compression,
    deps.layers.layerTar(diffId).pipe(counting(out, 'Pushing', id, total, true)),
  );
  const { digest, size } = await streamUpload(client, session, compressed);
  sendProgress(out, 'Pushing', id, Math.max(total, 1), Math.max(total, 1));
  out.status('Pushed', id);
  const blob = { mediaType, digest, size };
  await deps.metadata.add(diffId, blob, here);
  return blob;
}

export async function push(
  deps: PushDeps,
  base: URL,
  ref: Reference,
  creds: Credentials,
  out: JsonMessageStream,
): Promise<void> {
  const image = await deps.images.resolve(familiar(ref)).catch(() => {
    throw notFound(`An image does not exist locally with the tag: ${ref.repo}`);
  });
  const { host, repo, reference } = remoteOf(ref);
  out.status(`The push refers to repository [${host}/${repo}]`);
  const client = new RepositoryClient(base, repo, creds, 'pull,push');
  const diffIds = [...new Set(image.diffIds)];
  for (const diffId of diffIds) out.status('Preparing', short(diffId));
  const limiter = new Limiter(deps.maxUploads);
  const results = await Promise.allSettled(
    diffIds.map((diffId) => {
      if (limiter.full) out.status('Waiting', short(diffId));
      return limiter.run(() => pushLayer(deps, client, diffId, out));
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const byDiffId = new Map(diffIds.map((d, i) => [d, (results[i] as PromiseFulfilledResult<Blob>).value]));
  const config = await deps.images.configBytes(image.id);
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  if (!(await hasBlob(client, configDigest))) await uploadBytes(client, configDigest, config);
  // zstd layers exist only in OCI images: their manifest is OCI's (Docker schema 2 has no zstd type).
  const oci = deps.compression === 'zstd';
  const manifestType = oci ? MediaType.ociManifest : MediaType.dockerManifest;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: oci ? MediaType.ociConfig : MediaType.dockerConfig, digest: configDigest, size: config.length },
      layers: image.diffIds.map((d) => byDiffId.get(d)),
    }),
  );
  const r = await client.fetch(`manifests/${reference}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'Content-Type': manifestType },
  });
  if (r.status === 401 || r.status === 403) throw denied();
  if (r.status !== 201)
    throw new BerthError('system', `manifest upload failed: registry answered ${r.status} ${await r.text()}`);
  await r.body?.cancel();
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  await deps.images.setRef(image.id, `${host}/${repo}@${digest}`);
  out.status(`${reference}: digest: ${digest} size: ${manifest.length}`);
  out.send({ progressDetail: {}, aux: { Tag: reference, Digest: digest, Size: manifest.length } });
}
