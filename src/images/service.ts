/**
 * The image store under `<dataRoot>/image`:
 *
 *   records/<hex>.json   one per image (parent, when it was added, last tag time); the config
 *                        JSON itself is the content-store blob `sha256:<hex>` (= the image ID)
 *   repositories.json    familiar reference (`busybox:latest`, `app@sha256:…`) → image ID
 *   tmp/                 archives being loaded; swept at start
 *
 * Every write is atomic (temp + fsync + rename). Order on create: config blob → record → refs;
 * on delete: refs → record → blob → unused layers. A crash leaves at worst an untagged image or
 * an unreferenced blob, never a half-written record.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { ContainerDirectory } from '../model/container-directory.js';
import type { ContainerRecord } from '../model/container.js';
import type { ContentStore } from '../content/index.js';
import type { EngineEvent, EventBus } from '../model/events.js';
import type { LayerStore, RootfsStore } from '../layers/index.js';
import { conflict, invalid, notFound } from '../util/errors.js';
import { readJsonOr, sweepTemps, writeJsonAtomic } from '../util/fsx.js';
import { shortId } from '../util/ids.js';
import { loadArchive, saveArchive } from './archive.js';
import { committedConfig, importedConfig, planCommit, planImport } from './new-config.js';
import { imageHistory } from './history.js';
import { busyboxConfig, busyboxLayer, busyboxVersion } from './busybox.js';
import type {
  CommitOptions,
  DeleteItem,
  HistoryItem,
  Image,
  ImageConfig,
  ImageService,
  ImportOptions,
  PruneOptions,
} from './index.js';
import { familiar, parseReference, type Reference, refKey, withDefaultTag } from '../util/reference.js';

export interface ImageServiceOptions {
  root: string;
  content: ContentStore;
  rootfs: RootfsStore & LayerStore;
  events: EventBus;
  containers: ContainerDirectory;
}

interface ImageRecord {
  id: string;
  parent?: string;
  added: string;
  lastTagTime?: string;
}

interface Entry {
  record: ImageRecord;
  config: ImageConfig;
}

const hexOf = (id: string) => id.replace(/^sha256:/, '');
const isRunning = (c: ContainerRecord) => c.State.Running || c.State.Paused || c.State.Restarting;

export class ImageStore implements ImageService {
  private readonly images = new Map<string, Entry>();
  private readonly refs = new Map<string, string>();
  private mutex: Promise<unknown> = Promise.resolve();
  /** Layers applied by an operation that has not made its image yet: kept from layer GC. */
  private readonly pending = new Map<string, number>();
  /** Set while the default image is being made. */
  private making?: Promise<void>;

  private constructor(private readonly o: ImageServiceOptions) {}

  static async open(o: ImageServiceOptions): Promise<ImageStore> {
    const s = new ImageStore(o);
    await fs.mkdir(path.join(o.root, 'records'), { recursive: true });
    await fs.rm(path.join(o.root, 'tmp'), { recursive: true, force: true });
    await fs.mkdir(path.join(o.root, 'tmp'), { recursive: true });
    await sweepTemps(o.root);
    await sweepTemps(path.join(o.root, 'records'));
    for (const f of await fs.readdir(path.join(o.root, 'records'))) {
      if (!f.endsWith('.json')) continue;
      const record = await readJsonOr<ImageRecord | null>(path.join(o.root, 'records', f), null);
      if (!record) continue;
      try {
        const config = JSON.parse((await o.content.read(record.id)).toString('utf8')) as ImageConfig;
        if ((config.rootfs?.diff_ids ?? []).every((d) => o.rootfs.layerInfo(d)))
          s.images.set(record.id, { record, config });
      } catch {
        // config blob lost: the record is dropped below
      }
      if (!s.images.has(record.id)) await fs.rm(path.join(o.root, 'records', f), { force: true });
    }
    const refs = await readJsonOr<Record<string, string>>(path.join(o.root, 'repositories.json'), {});
    for (const [k, id] of Object.entries(refs)) if (s.images.has(id)) s.refs.set(k, id);
    await s.gcLayers();
    // Layers only a removed container still held (its image was deleted with -f) go with it.
    o.events.on('event', (ev: EngineEvent) => {
      if (ev.Type === 'container' && ev.Action === 'destroy')
        void s.locked(() => s.gcLayers()).catch(() => {});
    });
    return s;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.mutex.catch(() => {}).then(fn);
    this.mutex = next;
    return next;
  }

  private async saveRefs(): Promise<void> {
    await writeJsonAtomic(path.join(this.o.root, 'repositories.json'), Object.fromEntries(this.refs));
  }

  private async saveRecord(r: ImageRecord): Promise<void> {
    await writeJsonAtomic(path.join(this.o.root, 'records', `${hexOf(r.id)}.json`), r);
  }

  // ---- views ----

  private view(e: Entry): Image {
    const id = e.record.id;
    const repoTags: string[] = [];
    const repoDigests: string[] = [];
    for (const [k, v] of this.refs) if (v === id) (k.includes('@') ? repoDigests : repoTags).push(k);
    const diffIds = e.config.rootfs?.diff_ids ?? [];
    const size = diffIds.reduce((n, d) => n + (this.o.rootfs.layerInfo(d)?.size ?? 0), 0);
    return {
      id,
      config: e.config,
      diffIds,
      repoTags,
      repoDigests,
      size,
      created: e.config.created ?? e.record.added,
      parent: e.record.parent && this.images.has(e.record.parent) ? e.record.parent : undefined,
      lastTagTime: e.record.lastTagTime,
    };
  }

  async settled(): Promise<void> {
    await this.making?.catch(() => {});
  }

  count(): number {
    return this.images.size;
  }

  list(): Image[] {
    return [...this.images.values()].map((e) => this.view(e));
  }

  children(id: string): string[] {
    return [...this.images.values()].filter((e) => e.record.parent === id).map((e) => e.record.id);
  }

  private entryFor(ref: string): Entry | undefined {
    const s = ref.trim();
    const full = /^(?:sha256:)?([0-9a-f]{64})$/.exec(s);
    if (full) {
      const e = this.images.get(`sha256:${full[1]}`);
      if (e) return e;
    }
    let parsed: Reference | undefined;
    try {
      parsed = parseReference(s);
    } catch {
      parsed = undefined;
    }
    if (parsed) {
      const id = this.refs.get(familiar(withDefaultTag(parsed)));
      if (id) return this.images.get(id);
    }
    const prefix = /^(?:sha256:)?([0-9a-f]{1,63})$/.exec(s);
    if (prefix) {
      const matches = [...this.images.keys()].filter((id) => id.slice(7).startsWith(prefix[1]));
      if (matches.length === 1) return this.images.get(matches[0]);
    }
    return undefined;
  }

  private notFoundError(ref: string) {
    let shown = ref;
    try {
      if (!/^(?:sha256:)?[0-9a-f]{1,64}$/.test(ref)) shown = familiar(withDefaultTag(parseReference(ref)));
    } catch {
      // an invalid reference is shown as given
    }
    return notFound(`No such image: ${shown}`);
  }

  async resolve(ref: string): Promise<Image> {
    let e = this.entryFor(ref);
    if (!e && this.making) {
      // The daemon is still making the default image: a `run busybox` right after start waits.
      await this.making.catch(() => {});
      e = this.entryFor(ref);
    }
    if (!e) throw this.notFoundError(ref);
    return this.view(e);
  }

  // ---- creating images ----

  /** Adds an image from its exact config bytes (the ID is their digest); layers must exist. */
  async createFromConfig(configBytes: Buffer, opts: { parent?: string } = {}): Promise<Image> {
    let config: ImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    } catch (err) {
      throw invalid(`invalid image config: ${(err as Error).message}`);
    }
    if (
      !config ||
      typeof config !== 'object' ||
      config.rootfs?.type !== 'layers' ||
      !Array.isArray(config.rootfs.diff_ids)
    ) {
      throw invalid('invalid image config: no rootfs.diff_ids');
    }
    for (const d of config.rootfs.diff_ids)
      if (!this.o.rootfs.layerInfo(d)) throw invalid(`layer ${d} of the image is missing`);
    return this.locked(async () => {
      const { digest: id } = await this.o.content.write(configBytes);
      const have = this.images.get(id);
      if (have) return this.view(have);
      const record: ImageRecord = { id, added: new Date().toISOString() };
      if (opts.parent && this.images.has(opts.parent)) record.parent = opts.parent;
      await this.saveRecord(record);
      this.images.set(id, { record, config });
      return this.view(this.images.get(id)!);
    });
  }

  /** Points `ref` at image `id`; returns the image ID the tag was moved away from, if any. */
  async setRef(id: string, ref: string): Promise<string | undefined> {
    const r = parseReference(ref);
    const key = familiar(withDefaultTag(r));
    return this.locked(async () => {
      const e = this.images.get(id);
      if (!e) throw notFound(`No such image: ${id}`);
      const old = this.refs.get(key);
      this.refs.set(key, id);
      await this.saveRefs();
      e.record.lastTagTime = new Date().toISOString();
      await this.saveRecord(e.record);
      this.o.events.publish('image', 'tag', id, { name: key });
      return old !== id ? old : undefined;
    });
  }

  async tag(image: string, ref: string): Promise<void> {
    const r = parseReference(ref);
    if (r.digest) throw invalid('refusing to create a tag with a digest reference');
    const img = await this.resolve(image);
    await this.setRef(img.id, ref);
  }

  hold(diffId: string): void {
    this.pending.set(diffId, (this.pending.get(diffId) ?? 0) + 1);
  }

  release(diffId: string): void {
    const n = (this.pending.get(diffId) ?? 1) - 1;
    if (n <= 0) this.pending.delete(diffId);
    else this.pending.set(diffId, n);
  }

  /** Applies a layer and keeps it from GC until `release`. */
  async applyHeld(source: Readable, expectDiffId?: string): Promise<string> {
    const { diffId } = await this.o.rootfs.applyLayer(source, { expectDiffId });
    this.hold(diffId);
    return diffId;
  }

  async gcLayers(): Promise<number> {
    const keep = new Set<string>(this.pending.keys());
    for (const e of this.images.values()) for (const d of e.config.rootfs?.diff_ids ?? []) keep.add(d);
    return this.o.rootfs.gc(keep);
  }

  async ensureDefault(): Promise<void> {
    if (this.refs.has('busybox:latest')) return;
    if (!this.making) {
      this.making = this.makeDefault();
      this.making
        .finally(() => {
          this.making = undefined;
        })
        .catch(() => {});
    }
    return this.making;
  }

  private async makeDefault(): Promise<void> {
    const layer = await busyboxLayer();
    const diffId = await this.applyHeld(Readable.from([layer]));
    try {
      const img = await this.createFromConfig(busyboxConfig(diffId, await busyboxVersion()));
      if (!this.refs.has('busybox:latest')) await this.setRef(img.id, 'busybox:latest');
    } finally {
      this.release(diffId);
    }
  }

  async importTar(source: Readable, opts: ImportOptions): Promise<Image> {
    const { ref, runConfig } = planImport(opts);
    const diffId = await this.applyHeld(source);
    try {
      const img = await this.createFromConfig(Buffer.from(JSON.stringify(importedConfig(opts, runConfig, diffId))));
      this.o.events.publish('image', 'import', img.id, {});
      if (ref) await this.setRef(img.id, ref);
      return this.resolve(img.id);
    } finally {
      this.release(diffId);
    }
  }

  async commit(opts: CommitOptions): Promise<Image> {
    const { ref, runConfig } = planCommit(opts);
    const diffId = await this.applyHeld(opts.diff);
    try {
      const config = committedConfig(opts, runConfig, diffId);
      const img = await this.createFromConfig(Buffer.from(JSON.stringify(config)), { parent: opts.parent?.id });
      if (ref) await this.setRef(img.id, ref);
      this.o.events.publish('container', 'commit', opts.containerId, {
        comment: opts.comment ?? '',
        imageID: img.id,
        imageRef: ref ?? '',
      });
      return this.resolve(img.id);
    } finally {
      this.release(diffId);
    }
  }

  // ---- removing images ----

  private usersOf(id: string): ContainerRecord[] {
    try {
      return this.o.containers.list().filter((c) => c.Image === id);
    } catch {
      return [];
    }
  }

  private refsOf(id: string): string[] {
    return [...this.refs].filter(([, v]) => v === id).map(([k]) => k);
  }

  async remove(ref: string, opts: { force?: boolean; noprune?: boolean }): Promise<DeleteItem[]> {
    const e = this.entryFor(ref);
    if (!e) throw this.notFoundError(ref);
    const id = e.record.id;
    const force = !!opts.force;
    const prune = !opts.noprune;
    return this.locked(async () => {
      const items: DeleteItem[] = [];
      const s = ref.trim();
      let byName = false;
      try {
        byName = this.refs.get(refKey(s)) === id;
      } catch {
        byName = false;
      }
      if (byName) {
        const key = refKey(s);
        const repoRefs = this.refsOf(id);
        if (!force && repoRefs.length === 1) {
          const c = this.usersOf(id)[0];
          if (c) {
            throw conflict(
              `conflict: unable to remove repository reference "${s}" (must force) - container ${shortId(c.Id)} is using its referenced image ${shortId(id)}`,
            );
          }
        }
        // The repository's last tag gone: its digest references go with it (as Docker).
        const sameRepo = (k: string) => parseReference(k).repo === parseReference(key).repo;
        const lastTag = !key.includes('@') && !this.refsOf(id).some((k) => k !== key && !k.includes('@') && sameRepo(k));
        for (const k of [key, ...(lastTag ? this.refsOf(id).filter((r) => r.includes('@') && sameRepo(r)) : [])]) {
          this.refs.delete(k);
          items.push({ Untagged: k });
          this.o.events.publish('image', 'untag', id, { name: k });
        }
        await this.saveRefs();
        if (this.refsOf(id).length > 0) return items;
        await this.deleteHelper(id, items, force, prune, true);
      } else {
        const repoRefs = this.refsOf(id);
        const repos = new Set(repoRefs.map((k) => parseReference(k).repo));
        const tags = repoRefs.filter((k) => !k.includes('@'));
        if (repos.size <= 1 && tags.length <= 1) {
          this.checkConflicts(id, force, false);
          for (const k of repoRefs) {
            this.refs.delete(k);
            items.push({ Untagged: k });
            this.o.events.publish('image', 'untag', id, { name: k });
          }
          await this.saveRefs();
        }
        await this.deleteHelper(id, items, force, prune, false);
      }
      await this.gcLayers();
      return items;
    });
  }

  /** The first conflict that stops deleting `id`, worded as moby does; undefined when none. */
  private conflictOf(id: string, force: boolean, checkRefs: boolean): string | undefined {
    const short = shortId(id);
    if (this.children(id).length)
      return `conflict: unable to delete ${short} (cannot be forced) - image has dependent child images`;
    const users = this.usersOf(id);
    const running = users.find(isRunning);
    if (running)
      return `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${shortId(running.Id)}`;
    if (!force && checkRefs && this.refsOf(id).length)
      return `conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`;
    if (!force && users.length)
      return `conflict: unable to delete ${short} (must be forced) - image is being used by stopped container ${shortId(users[0].Id)}`;
    return undefined;
  }

  private checkConflicts(id: string, force: boolean, checkRefs: boolean): void {
    const c = this.conflictOf(id, force, checkRefs);
    if (c) throw conflict(c);
  }

  private async deleteHelper(
    id: string,
    items: DeleteItem[],
    force: boolean,
    prune: boolean,
    quiet: boolean,
  ): Promise<void> {
    const c = this.conflictOf(id, force, true);
    if (c) {
      if (quiet) return;
      throw conflict(c);
    }
    const e = this.images.get(id);
    if (!e) return;
    for (const k of this.refsOf(id)) {
      this.refs.delete(k);
      items.push({ Untagged: k });
      this.o.events.publish('image', 'untag', id, { name: k });
    }
    await this.saveRefs();
    this.images.delete(id);
    await fs.rm(path.join(this.o.root, 'records', `${hexOf(id)}.json`), { force: true });
    await this.o.content.delete(id);
    items.push({ Deleted: id });
    this.o.events.publish('image', 'delete', id, {});
    const parent = e.record.parent;
    if (
      prune &&
      parent &&
      this.images.has(parent) &&
      this.refsOf(parent).length === 0 &&
      this.children(parent).length === 0
    ) {
      await this.deleteHelper(parent, items, false, prune, true);
    }
  }

  async prune(opts: PruneOptions): Promise<{ ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }> {
    return this.locked(async () => {
      const deleted: DeleteItem[] = [];
      const used = new Set(this.usersOfAll());
      const candidates = [...this.images.values()].filter((e) => {
        const id = e.record.id;
        if (used.has(id)) return false;
        if (opts.danglingOnly && this.refsOf(id).length) return false;
        if (opts.danglingOnly && this.children(id).length) return false;
        const created = Date.parse(e.config.created ?? e.record.added) / 1000;
        if (opts.until !== undefined && !(created < opts.until)) return false;
        if (opts.labels?.length && !matchLabels(e.config.config?.Labels ?? {}, opts.labels)) return false;
        return true;
      });
      for (const e of candidates) {
        if (!this.images.has(e.record.id)) continue;
        if (this.children(e.record.id).length) continue;
        const items: DeleteItem[] = [];
        await this.deleteHelper(e.record.id, items, true, true, true);
        deleted.push(...items);
      }
      const freed = await this.gcLayers();
      return { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: freed };
    });
  }

  private usersOfAll(): string[] {
    try {
      return this.o.containers.list().map((c) => c.Image);
    } catch {
      return [];
    }
  }

  // ---- history, archives ----

  async history(ref: string): Promise<HistoryItem[]> {
    const img = await this.resolve(ref);
    const parentOf = (i: Image) => {
      const e = i.parent ? this.images.get(i.parent) : undefined;
      return e ? this.view(e) : undefined;
    };
    return imageHistory(img, parentOf, (d) => this.o.rootfs.layerInfo(d)?.size ?? 0);
  }

  async load(source: Readable): Promise<string[]> {
    const tmp = await fs.mkdtemp(path.join(this.o.root, 'tmp', 'load-'));
    try {
      return await loadArchive(this, source, tmp);
    } catch (err) {
      await this.gcLayers().catch(() => {});
      throw err;
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  async save(refs: string[]): Promise<Readable> {
    const picked: { image: Image; tags: string[] }[] = [];
    const byId = new Map<string, { image: Image; tags: string[] }>();
    for (const ref of refs) {
      const e = this.entryFor(ref);
      let tags: string[] = [];
      let image: Image | undefined;
      if (e) {
        image = this.view(e);
        try {
          const key = refKey(ref);
          if (this.refs.get(key) === image.id && !key.includes('@')) tags = [key];
        } catch {
          tags = [];
        }
      } else {
        // `docker save busybox`: every tag of the repository
        let r: Reference | undefined;
        try {
          r = parseReference(ref);
        } catch {
          r = undefined;
        }
        if (!r || r.tag || r.digest) throw this.notFoundError(ref);
        for (const [k, id] of this.refs) {
          if (k.includes('@') || parseReference(k).repo !== r.repo) continue;
          const img = this.view(this.images.get(id)!);
          const slot = byId.get(img.id) ?? { image: img, tags: [] };
          if (!byId.has(img.id)) {
            byId.set(img.id, slot);
            picked.push(slot);
          }
          slot.tags.push(k);
        }
        if (!picked.length) throw this.notFoundError(ref);
        continue;
      }
      const slot = byId.get(image.id) ?? { image, tags: [] };
      if (!byId.has(image.id)) {
        byId.set(image.id, slot);
        picked.push(slot);
      }
      for (const t of tags) if (!slot.tags.includes(t)) slot.tags.push(t);
    }
    for (const p of picked) this.o.events.publish('image', 'save', p.image.id, {});
    return saveArchive(picked, { content: this.o.content, layers: this.o.rootfs });
  }

  /** For archive.ts: the exact config bytes of an image. */
  configBytes(id: string): Promise<Buffer> {
    return this.o.content.read(id);
  }

  get events(): EventBus {
    return this.o.events;
  }
}

/** Docker label filters: `key`, `key=value`, `key!=value`; `!key` (from `label!=key`) negates. */
export function matchLabels(labels: Record<string, string>, filters: string[]): boolean {
  return filters.every((f) => {
    if (f.startsWith('!')) return !(f.slice(1) in labels);
    const ne = f.indexOf('!=');
    if (ne > 0) return labels[f.slice(0, ne)] !== f.slice(ne + 2);
    const eq = f.indexOf('=');
    if (eq > 0) return labels[f.slice(0, eq)] === f.slice(eq + 1);
    return f in labels;
  });
}

export async function openImageService(opts: ImageServiceOptions): Promise<ImageStore> {
  return ImageStore.open(opts);
}
