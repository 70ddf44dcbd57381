/**
 * `docker push` (`POST /images/{name}/push`): layers (as the uncompressed tars they were applied
 * from, so a layer's blob digest is its diff ID), the config, then an OCI manifest under the tag.
 * Blobs the registry already has are not sent again. Progress as Docker's JSON messages.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { JsonMessageStream } from '../util/json-message.js';
import type { ImageService } from '../images/index.js';
import type { LayerStore } from '../layers/index.js';
import { MediaType } from '../model/media-types.js';
import { BerthError, notFound } from '../util/errors.js';
import { familiar, type Reference } from '../util/reference.js';
import { type Credentials, RepositoryClient, remoteOf } from './client.js';

const short = (digest: string) => digest.replace(/^sha\d+:/, '').slice(0, 12);

async function hasBlob(client: RepositoryClient, digest: string): Promise<boolean> {
  const r = await client.fetch(`blobs/${digest}`, { method: 'HEAD' });
  return r.ok;
}

/** Uploads one blob (POST then a monolithic PUT of the body); returns the bytes sent. */
async function upload(client: RepositoryClient, digest: string, body: Buffer | Readable): Promise<number> {
  const start = await client.fetch('blobs/uploads/', { method: 'POST' });
  if (start.status === 401 || start.status === 403)
    throw new BerthError('forbidden', 'denied: requested access to the resource is denied');
  if (start.status !== 202)
    throw new BerthError('system', `blob upload failed to start: registry answered ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', client.base);
  location.searchParams.set('digest', digest);
  let size = 0;
  let payload: BodyInit;
  if (Buffer.isBuffer(body)) {
    size = body.length;
    payload = body as unknown as BodyInit;
  } else {
    body.on('data', (c: Buffer) => {
      size += c.length;
    });
    payload = Readable.toWeb(body) as unknown as ReadableStream;
  }
  const put = await client.fetch(location.toString(), {
    method: 'PUT',
    body: payload,
    headers: { 'Content-Type': 'application/octet-stream' },
    ...({ duplex: 'half' } as object),
  });
  if (put.status !== 201)
    throw new BerthError(
      'system',
      `blob upload of ${digest} failed: registry answered ${put.status} ${await put.text()}`,
    );
  return size;
}

export async function push(
  deps: { images: ImageService; layers: LayerStore },
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
  const layers: { mediaType: string; digest: string; size: number }[] = [];
  for (const diffId of image.diffIds) out.status('Preparing', short(diffId));
  for (const diffId of image.diffIds) {
    const id = short(diffId);
    let size: number;
    if (await hasBlob(client, diffId)) {
      out.status('Layer already exists', id);
      size = await countBytes(deps.layers.layerTar(diffId));
    } else {
      out.status('Pushing', id);
      size = await upload(client, diffId, deps.layers.layerTar(diffId));
      out.status('Pushed', id);
    }
    layers.push({ mediaType: MediaType.ociLayer, digest: diffId, size });
  }
  const config = await deps.images.configBytes(image.id);
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  if (!(await hasBlob(client, configDigest))) await upload(client, configDigest, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: {
        mediaType: MediaType.ociConfig,
        digest: configDigest,
        size: config.length,
      },
      layers,
    }),
  );
  const r = await client.fetch(`manifests/${reference}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'Content-Type': MediaType.ociManifest },
  });
  if (r.status === 401 || r.status === 403)
    throw new BerthError('forbidden', 'denied: requested access to the resource is denied');
  if (r.status !== 201)
    throw new BerthError('system', `manifest upload failed: registry answered ${r.status} ${await r.text()}`);
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  await deps.images.setRef(image.id, `${host}/${repo}@${digest}`);
  out.status(`${reference}: digest: ${digest} size: ${manifest.length}`);
  out.send({ progressDetail: {}, aux: { Tag: reference, Digest: digest, Size: manifest.length } });
}

async function countBytes(s: Readable): Promise<number> {
  let n = 0;
  for await (const c of s as AsyncIterable<Buffer>) n += c.length;
  return n;
}
