/**
 * `docker save` / `docker load` archives. Save writes what moby ≥ 25 writes: an OCI image layout
 * (`oci-layout`, `index.json`, `blobs/sha256/…`) plus the legacy `manifest.json` and
 * `repositories`, layers uncompressed and byte-identical to the ones loaded, so an image saved and
 * loaded again keeps its ID. Load reads either format (layers plain or gzip, the archive itself
 * plain or gzip), checking every digest before an image is made.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type { ContentStore } from '../content/index.js';
import type { LayerStore } from '../layers/index.js';
import { tarError, tarErrorFrom } from '../layers/scan.js';
import { addEntry, addStreamEntry, cleanName, decompressed, extract, pack } from '../layers/tar.js';
import { BerthError, invalid } from '../util/errors.js';
import type { Image } from './index.js';
import { familiar, parseReference, qualified, withDefaultTag } from '../util/reference.js';
import { goArch } from '../util/platform.js';
import { MediaType } from '../model/media-types.js';
import type { EventBus } from '../model/events.js';

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const MT = MediaType;

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string };
}

// ---- save ----

export function saveArchive(
  images: { image: Image; tags: string[] }[],
  deps: { content: ContentStore; layers: LayerStore },
): Readable {
  const p = pack();
  const mtime = new Date(0);
  const base = { uid: 0, gid: 0, mtime, mode: 0o644 };
  const work = async () => {
    const written = new Set<string>();
    const index: Descriptor[] = [];
    const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    await addEntry(p, { ...base, name: 'blobs', type: 'directory', mode: 0o755 });
    await addEntry(p, { ...base, name: 'blobs/sha256', type: 'directory', mode: 0o755 });
    const blob = async (digest: string, body: Buffer | (() => Readable), size: number) => {
      if (written.has(digest)) return;
      written.add(digest);
      const name = `blobs/sha256/${digest.slice(7)}`;
      if (Buffer.isBuffer(body)) await addEntry(p, { ...base, name, type: 'file', size }, body);
      else await addStreamEntry(p, { ...base, name, type: 'file', size }, body());
    };
    for (const { image, tags } of images) {
      const config = await deps.content.read(image.id);
      await blob(image.id, config, config.length);
      const layers: Descriptor[] = [];
      for (const d of image.diffIds) {
        const info = await deps.content.info(d);
        if (!info) throw invalid(`layer ${d} of ${image.id} is missing`);
        await blob(d, () => deps.layers.layerTar(d), info.size);
        layers.push({ mediaType: MT.ociLayer, digest: d, size: info.size });
      }
      const m = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          config: { mediaType: MT.ociConfig, digest: image.id, size: config.length },
          layers,
        }),
      );
      const mDigest = sha256(m);
      await blob(mDigest, m, m.length);
      const desc = { mediaType: MT.ociManifest, digest: mDigest, size: m.length };
      if (tags.length === 0) index.push(desc);
      for (const t of tags) {
        const r = parseReference(t);
        index.push({
          ...desc,
          annotations: {
            'io.containerd.image.name': qualified(r),
            'org.opencontainers.image.ref.name': r.tag ?? 'latest',
          },
        });
        const top = image.diffIds.at(-1);
        if (top && r.tag) {
          repositories[r.repo] = repositories[r.repo] ?? {};
          repositories[r.repo][r.tag] = top.slice(7);
        }
      }
      manifest.push({
        Config: `blobs/sha256/${image.id.slice(7)}`,
        RepoTags: tags.length ? tags : null,
        Layers: image.diffIds.map((d) => `blobs/sha256/${d.slice(7)}`),
      });
    }
    const file = (name: string, v: unknown) => {
      const b = Buffer.from(`${JSON.stringify(v)}\n`);
      return addEntry(p, { ...base, name, type: 'file', size: b.length }, b);
    };
    await file('index.json', { schemaVersion: 2, mediaType: MT.ociIndex, manifests: index });
    await file('manifest.json', manifest);
    await file('oci-layout', { imageLayoutVersion: '1.0.0' });
    if (Object.keys(repositories).length) await file('repositories', repositories);
    p.finalize();
  };
  work().catch((err: Error) => p.destroy(err));
  return p;
}

// ---- load ----

/** Unpacks the archive's regular files into `dir` (names checked), recording symlinks among them. */
async function unpackArchive(source: Readable, dir: string): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  const ex = extract();
  const plain = await decompressed(source);
  plain.on('error', (e) => (ex as unknown as { destroy: (e: Error) => void }).destroy(e));
  plain.pipe(ex as unknown as NodeJS.WritableStream);
  let n = 0;
  try {
    for await (const entry of ex) {
      n++;
      const h = entry.header;
      const name = cleanName(h.name);
      if (name.split('/').includes('..'))
        throw tarError(`member name contains '..': ${JSON.stringify(h.name)}`);
      if (name === '' || h.type === 'directory') {
        entry.resume();
        continue;
      }
      if (h.type === 'symlink') {
        links.set(name, h.linkname ?? '');
        entry.resume();
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        entry.resume();
        continue; // nothing else has a meaning in an image archive
      }
      const target = path.join(dir, name);
      await fs.mkdir(path.dirname(target), { recursive: true });
      const fh = await fs.open(target, 'wx', 0o600);
      try {
        for await (const chunk of entry) await fh.write(chunk as Buffer);
      } finally {
        await fh.close();
      }
    }
  } catch (err) {
    if (err instanceof BerthError) throw err;
    if ((err as { code?: string }).code === 'EEXIST') throw tarError('duplicate member in the archive');
    throw tarErrorFrom(err);
  }
  if (n === 0) throw tarError('unexpected EOF');
  return links;
}

/** Resolves a member name inside the unpacked archive (following the archive's own symlinks). */
function resolver(dir: string, links: Map<string, string>) {
  return (name: string): string => {
    let cur = cleanName(name);
    for (let i = 0; i < 16; i++) {
      const t = links.get(cur);
      if (t === undefined) break;
      const next = path.posix.normalize(path.posix.join(path.posix.dirname(cur), t));
      if (t.startsWith('/') || next.startsWith('..'))
        throw tarError(`invalid symlink ${JSON.stringify(cur)} -> ${JSON.stringify(t)}`);
      cur = cleanName(next);
    }
    if (cur.split('/').includes('..') || cur === '')
      throw tarError(`invalid path in archive: ${JSON.stringify(name)}`);
    return path.join(dir, cur);
  };
}

async function readJsonFile<T>(file: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw invalid(`invalid archive: ${what} is missing`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw invalid(`invalid archive: ${what}: ${(err as Error).message}`);
  }
}

interface Loadable {
  configBytes: Buffer;
  layers: { file: string }[];
  tags: string[];
}

async function fromManifest(dir: string, at: (n: string) => string): Promise<Loadable[]> {
  const manifest = await readJsonFile<{ Config?: string; RepoTags?: string[] | null; Layers?: string[] }[]>(
    path.join(dir, 'manifest.json'),
    'manifest.json',
  );
  if (!Array.isArray(manifest)) throw invalid('invalid archive: manifest.json is not a list');
  const out: Loadable[] = [];
  for (const m of manifest) {
    if (typeof m?.Config !== 'string' || !Array.isArray(m.Layers))
      throw invalid('invalid archive: manifest.json entry without Config or Layers');
    const configBytes = await fs.readFile(at(m.Config)).catch(() => {
      throw invalid(`invalid archive: ${m.Config} is missing`);
    });
    out.push({ configBytes, layers: m.Layers.map((l) => ({ file: at(l) })), tags: m.RepoTags ?? [] });
  }
  return out;
}

async function fromOciLayout(dir: string): Promise<Loadable[]> {
  const blobPath = (d: Descriptor) => {
    const m = /^(sha256|sha512):([0-9a-f]+)$/.exec(d?.digest ?? '');
    if (!m) throw invalid(`invalid archive: bad digest ${JSON.stringify(d?.digest)}`);
    return path.join(dir, 'blobs', m[1], m[2]);
  };
  const readBlob = async (d: Descriptor) => {
    const b = await fs.readFile(blobPath(d)).catch(() => {
      throw invalid(`invalid archive: blob ${d.digest} is missing`);
    });
    if (d.digest.startsWith('sha256:') && sha256(b) !== d.digest)
      throw invalid(`invalid archive: digest mismatch for blob ${d.digest}`);
    return b;
  };
  const index = await readJsonFile<{ manifests?: Descriptor[] }>(path.join(dir, 'index.json'), 'index.json');
  const out: Loadable[] = [];
  const visit = async (d: Descriptor, name: string | undefined, depth: number): Promise<void> => {
    if (depth > 4) throw invalid('invalid archive: index nesting too deep');
    const body = JSON.parse((await readBlob(d)).toString('utf8')) as {
      mediaType?: string;
      manifests?: Descriptor[];
      config?: Descriptor;
      layers?: Descriptor[];
    };
    const mt = d.mediaType ?? body.mediaType;
    if (mt === MT.ociIndex || mt === MT.dockerList || Array.isArray(body.manifests)) {
      const arch = goArch();
      const list = (body.manifests ?? []).filter(
        (m) => !m.platform || (m.platform.os === 'linux' && m.platform.architecture === arch),
      );
      for (const m of list.slice(0, 1)) await visit(m, name, depth + 1);
      return;
    }
    if (!body.config || !Array.isArray(body.layers))
      throw invalid(`invalid archive: manifest ${d.digest} has no config or layers`);
    const configBytes = await readBlob(body.config);
    const found = out.find((l) => l.configBytes.equals(configBytes));
    const tags = name ? [name] : [];
    if (found) found.tags.push(...tags);
    else out.push({ configBytes, layers: body.layers.map((l) => ({ file: blobPath(l) })), tags });
  };
  for (const d of index.manifests ?? []) {
    const a = d.annotations ?? {};
    let name: string | undefined = a['io.containerd.image.name'];
    const refName = a['org.opencontainers.image.ref.name'];
    if (!name && refName && /[/:]/.test(refName)) name = refName;
    await visit(d, name, 0);
  }
  return out;
}

/** What a load writes through: the image store's primitives, without its class. */
export interface ImageWriter {
  readonly events: EventBus;
  /** Unpacks a layer (verifying its diff ID) and holds it until `release`. */
  applyHeld(source: Readable, expectDiffId?: string): Promise<string>;
  release(diffId: string): void;
  createFromConfig(configBytes: Buffer): Promise<Image>;
  /** Points a tag at an image; returns the ID it pointed at before, if another. */
  setRef(id: string, ref: string): Promise<string | undefined>;
}

export async function loadArchive(store: ImageWriter, source: Readable, dir: string): Promise<string[]> {
  const links = await unpackArchive(source, dir);
  const at = resolver(dir, links);
  const has = (n: string) =>
    fs
      .stat(path.join(dir, n))
      .then(() => true)
      .catch(() => links.has(n));
  let loadables: Loadable[];
  if (await has('manifest.json')) loadables = await fromManifest(dir, at);
  else if (await has('index.json')) loadables = await fromOciLayout(dir);
  else
    throw invalid(
      'invalid archive: neither manifest.json nor index.json found (not a docker save archive or OCI layout)',
    );
  // Check every tag before changing anything.
  for (const l of loadables) l.tags = l.tags.map((t) => familiar(withDefaultTag(parseReference(t))));
  const lines: string[] = [];
  const held: string[] = [];
  try {
    const made: { image: Image; tags: string[] }[] = [];
    for (const l of loadables) {
      let config: { rootfs?: { diff_ids?: string[] } };
      try {
        config = JSON.parse(l.configBytes.toString('utf8'));
      } catch (err) {
        throw invalid(`invalid archive: image config: ${(err as Error).message}`);
      }
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (!Array.isArray(diffIds) || diffIds.length !== l.layers.length) {
        throw invalid(
          `invalid archive: the config lists ${diffIds.length} layers, the manifest ${l.layers.length}`,
        );
      }
      for (let i = 0; i < l.layers.length; i++) {
        await fs.stat(l.layers[i].file).catch(() => {
          throw invalid('invalid archive: a layer blob is missing');
        });
        held.push(await store.applyHeld(createReadStream(l.layers[i].file), diffIds[i]));
      }
      made.push({ image: await store.createFromConfig(l.configBytes), tags: l.tags });
    }
    for (const { image, tags } of made) {
      store.events.publish('image', 'load', image.id, {});
      for (const t of tags) {
        const old = await store.setRef(image.id, t);
        if (old)
          lines.push(`The image ${t} already exists, renaming the old one with ID ${old} to empty string`);
        lines.push(`Loaded image: ${t}`);
      }
      if (!tags.length) lines.push(`Loaded image ID: ${image.id}`);
    }
  } finally {
    for (const d of held) store.release(d);
  }
  return lines;
}
