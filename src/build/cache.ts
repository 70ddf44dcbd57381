/**
 * The build cache: step key → the image that step made. A key is the sha256 of the parent image
 * ID, the instruction after ARG/ENV expansion (with the build args a RUN sees) and, for COPY/ADD,
 * the content hash of the selected files. The images themselves are ordinary (untagged,
 * parent-linked) images; the index lives in `<dataRoot>/build/cache.json`, written atomically,
 * so it survives a restart. An entry whose image is gone is a miss and is dropped.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { readJsonOr, writeJsonAtomic } from '../util/fsx.js';

export interface CacheEntry {
  image: string;
  created: string;
  /** Bytes of the layer this step added (0 for a metadata step), for `system df`. */
  size: number;
  lastUsed?: string;
  description?: string;
}

export function stepKey(parent: string, instruction: string, contentHash = ''): string {
  return createHash('sha256').update(`${parent}\n${instruction}\n${contentHash}`).digest('hex');
}

export class BuildCache {
  private entries = new Map<string, CacheEntry>();
  private saving: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string) {}

  static async open(dir: string): Promise<BuildCache> {
    const c = new BuildCache(path.join(dir, 'cache.json'));
    const data = await readJsonOr<Record<string, CacheEntry>>(c.file, {});
    for (const [k, v] of Object.entries(data)) if (v && typeof v.image === 'string') c.entries.set(k, v);
    return c;
  }

  get(key: string): CacheEntry | undefined {
    return this.entries.get(key);
  }

  async touch(key: string): Promise<void> {
    const e = this.entries.get(key);
    if (e) e.lastUsed = new Date().toISOString();
  }

  async put(key: string, entry: CacheEntry): Promise<void> {
    this.entries.set(key, entry);
    await this.save();
  }

  async drop(keys: string[]): Promise<void> {
    for (const k of keys) this.entries.delete(k);
    await this.save();
  }

  list(): [string, CacheEntry][] {
    return [...this.entries];
  }

  /** Writes are chained: concurrent builds never interleave two renames of the index. */
  save(): Promise<void> {
    const next = this.saving
      .catch(() => {})
      .then(() => writeJsonAtomic(this.file, Object.fromEntries(this.entries)));
    this.saving = next;
    return next;
  }
}
