/**
 * `docker pull` (`POST /images/create?fromImage=`): manifest (index → this platform), config and
 * layers from a registry, each verified against its digest before it is kept; layers already
 * present are not fetched again. Progress goes out as Docker's JSON messages.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import type { JsonMessageStream } from '../util/json-message.js';
import type { ImageService } from '../images/index.js';
import type { LayerStore } from '../layers/index.js';
import { BerthError, invalid, notFound } from '../util/errors.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../model/media-types.js';
import { goArch } from '../util/platform.js';
import type { Reference } from '../util/reference.js';
import { type Credentials, RepositoryClient, remoteOf } from './client.js';

const ACCEPT = [...MANIFEST_TYPES, ...INDEX_TYPES].join(', ');

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const short = (digest: string) => digest.replace(/^sha\d+:/, '').slice(0, 12);

/** Passes bytes through and fails at the end unless they hash to `digest`. */
function verifying(digest: string): Transform {
  const [alg, hex] = digest.split(':');
  const hash = createHash(alg === 'sha512' ? 'sha512' : 'sha256');
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const got = hash.digest('hex');
      cb(got === hex ? null : invalid(`digest mismatch for ${digest}: the registry sent ${alg}:${got}`));
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
  const json = JSON.parse(bytes.toString()) as { mediaType?: string };
  const type = (r.headers.get('content-type') ?? '').split(';')[0] || json.mediaType || '';
  return { bytes, type, digest };
}

export async function pull(
  deps: { images: ImageService; layers: LayerStore },
  ref: Reference,
  creds: Credentials,
  out: JsonMessageStream,
): Promise<string> {
  const { host, repo, reference } = remoteOf(ref);
  const name = ref.repo;
  const byDigest = reference.includes(':');
  const client = new RepositoryClient(host, repo, creds, 'pull');
  // As Docker: nothing is said before the manifest is found, so a failure up to here is
  // answered with an HTTP error status instead of inside a 200 stream.
  const top = await fetchManifest(client, reference, name);
  out.status(`Pulling from ${repo}`, reference);
  let manifest = top;
  if (
    INDEX_TYPES.includes(top.type) ||
    (JSON.parse(top.bytes.toString()) as { manifests?: unknown }).manifests
  ) {
    const index = JSON.parse(top.bytes.toString()) as { manifests: Descriptor[] };
    const arch = goArch();
    const pick = index.manifests.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === arch);
    if (!pick) throw notFound(`no matching manifest for linux/${arch} in the manifest list entries`);
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
    if (!existing) {
      for (const [i, layer] of m.layers.entries()) {
        const id = short(layer.digest);
        if (deps.layers.layerInfo(diffIds[i])) {
          out.status('Already exists', id);
          continue;
        }
        out.status('Pulling fs layer', id);
        const r = await client.fetch(`blobs/${layer.digest}`);
        if (!r.ok || !r.body)
          throw new BerthError(
            'system',
            `error pulling layer ${layer.digest}: registry answered ${r.status}`,
          );
        out.send({ status: 'Downloading', progressDetail: { current: 0, total: layer.size ?? 0 }, id });
        const body = Readable.fromWeb(r.body as import('node:stream/web').ReadableStream).pipe(
          verifying(layer.digest),
        );
        held.push(await deps.images.applyHeld(body, diffIds[i]));
        out.status('Pull complete', id);
      }
    }
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
