/**
 * Where a step's cached image comes from: the local index (cache.ts) and, with `--cache-from`
 * (`cachefrom`), the images named there, as Docker's classic builder uses them:
 *
 * - a local hit counts only when it is one of those images or an ancestor (parent chain) of one;
 * - otherwise each such image whose history and layers begin with the parent image's, and whose
 *   next history entry was made by the same instruction (`created_by`), gives the step: its last
 *   entry is the image itself; an earlier one is restored as a new image (the parent's layers and
 *   history plus that entry and its layer, the step's config), and from then on only that image
 *   is followed.
 *
 * A hit found through `--cache-from` is put into the local index, so the next build needs no flag.
 */
import type { Image, ImageConfig, ImageService } from '../images/index.js';
import type { LayerStore } from '../layers/index.js';
import { log } from '../util/log.js';
import type { BuildCache } from './cache.js';

type History = NonNullable<ImageConfig['history']>[number];

/** The fields of a history entry that make it the same entry, in a fixed order. */
function entryOf(h: History): string {
  return JSON.stringify([h.created ?? '', h.created_by ?? '', h.author ?? '', h.comment ?? '', !!h.empty_layer]);
}

/** `target` was built on `parent`: its history and layers start with the parent's. */
export function isValidParent(target: ImageConfig, parent: ImageConfig | undefined): boolean {
  const th = target.history ?? [];
  if (th.length === 0) return false;
  if (!parent) return true;
  const ph = parent.history ?? [];
  const pd = parent.rootfs.diff_ids;
  if (ph.length === 0 && pd.length === 0) return true;
  if (ph.length >= th.length || pd.length > target.rootfs.diff_ids.length) return false;
  return ph.every((h, i) => entryOf(h) === entryOf(th[i])) && pd.every((d, i) => d === target.rootfs.diff_ids[i]);
}

/** The layer that history entry `index` added, or undefined for an empty-layer entry. */
export function layerOfEntry(config: ImageConfig, index: number): string | undefined {
  const history = config.history ?? [];
  if (history[index]?.empty_layer) return undefined;
  const before = history.slice(0, index).filter((h) => !h.empty_layer).length;
  return config.rootfs.diff_ids[before];
}

export interface StepLookupDeps {
  images: ImageService;
  rootfs: LayerStore;
  cache: BuildCache;
}

export class StepLookup {
  private constructor(
    private readonly d: StepLookupDeps,
    /** undefined: no `--cache-from`, the local index alone decides. */
    private sources: Image[] | undefined,
  ) {}

  /** Images named in `--cache-from` that are missing locally are skipped, as Docker does. */
  static async open(d: StepLookupDeps, cacheFrom: string[]): Promise<StepLookup> {
    if (!cacheFrom.length) return new StepLookup(d, undefined);
    const sources: Image[] = [];
    for (const ref of cacheFrom) {
      const img = await d.images.resolve(ref).catch((err) => {
        log.warn('build: could not look up a --cache-from image, skipping', { ref, err });
        return undefined;
      });
      if (img) sources.push(img);
    }
    return new StepLookup(d, sources);
  }

  /**
   * The image a step with cache key `key`, built on `parentId` by the instruction recorded as
   * `createdBy` (empty: only the local index may answer), can reuse; `config` is the step's config.
   */
  async find(key: string, parentId: string, createdBy: string, config: ImageConfig): Promise<Image | undefined> {
    const local = await this.local(key);
    if (!this.sources) return local;
    if (local && (await this.inSourceChain(local.id))) return local;
    if (!createdBy) return undefined;
    const found = await this.fromSources(parentId, createdBy, config);
    if (found) {
      const diffId = found.diffIds[found.diffIds.length - 1];
      const added = (found.config.history ?? []).at(-1)?.empty_layer ? undefined : diffId;
      await this.d.cache.put(key, {
        image: found.id,
        created: found.created,
        size: added ? (this.d.rootfs.layerInfo(added)?.size ?? 0) : 0,
        description: createdBy,
        lastUsed: new Date().toISOString(),
      });
    }
    return found;
  }

  private async local(key: string): Promise<Image | undefined> {
    const hit = this.d.cache.get(key);
    if (!hit) return undefined;
    const img = await this.d.images.resolve(hit.image).catch(() => undefined);
    if (!img) {
      // Its image was removed (rmi, image prune): the entry is stale.
      await this.d.cache.drop([key]);
      return undefined;
    }
    await this.d.cache.touch(key);
    return img;
  }

  private async inSourceChain(id: string): Promise<boolean> {
    for (const s of this.sources ?? []) {
      for (let p: Image | undefined = s; p; ) {
        if (p.id === id) return true;
        p = p.parent ? await this.d.images.resolve(p.parent).catch(() => undefined) : undefined;
      }
    }
    return false;
  }

  private async fromSources(parentId: string, createdBy: string, config: ImageConfig): Promise<Image | undefined> {
    const parent = parentId ? await this.d.images.resolve(parentId).catch(() => undefined) : undefined;
    if (parentId && !parent) return undefined;
    const index = parent?.config.history?.length ?? 0;
    for (const target of this.sources ?? []) {
      if (!isValidParent(target.config, parent?.config)) continue;
      const entry = (target.config.history ?? [])[index];
      if (entry?.created_by !== createdBy) continue;
      if (index === (target.config.history ?? []).length - 1) return target;
      const restored = await this.restore(parent, target, index, config);
      // Once one image answered, only its chain is followed (Docker does the same, for safety).
      this.sources = [target];
      return restored;
    }
    return undefined;
  }

  /** The image of history entry `index` of `target`: the parent plus that entry and its layer. */
  private async restore(parent: Image | undefined, target: Image, index: number, config: ImageConfig): Promise<Image> {
    const entry = (target.config.history ?? [])[index];
    const layer = layerOfEntry(target.config, index);
    const diffIds = [...(parent?.config.rootfs.diff_ids ?? []), ...(layer ? [layer] : [])];
    const bytes = JSON.stringify({
      architecture: target.config.architecture,
      ...(target.config.author ? { author: target.config.author } : {}),
      config: config.config,
      created: entry.created,
      history: [...(parent?.config.history ?? []), entry],
      os: target.config.os,
      rootfs: { type: 'layers', diff_ids: diffIds },
    });
    return this.d.images.createFromConfig(Buffer.from(bytes), { parent: parent?.id });
  }
}
