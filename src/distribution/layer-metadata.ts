/**
 * What registries know a layer as: for each diff ID (the uncompressed tar's digest), the compressed
 * blobs it was pushed or pulled as, and the repositories (`host/path`) that hold them. A second push
 * then finds the blob without compressing the layer again (`Layer already exists`), or mounts it
 * from another repository on the same registry. Like dockerd's `v2metadata-by-diffid`; a lost
 * file only costs a recompression.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { readJsonOr, replaceFile } from '../util/fsx.js';
import { Mutex } from '../util/mutex.js';

export interface CompressedLayer {
  digest: string;
  size: number;
  mediaType: string;
  /** Repositories known to hold the blob, as `host/path` (newest last). */
  repos: string[];
}

/** Kept per layer: enough for every registry a host deals with, not a growing log. */
const MAX_REPOS = 16;

export class LayerMetadata {
  private readonly lock = new Mutex();

  private constructor(
    private readonly file: string,
    private readonly byDiffId: Record<string, CompressedLayer[]>,
  ) {}

  static async open(dir: string): Promise<LayerMetadata> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'layers-by-diffid.json');
    return new LayerMetadata(file, await readJsonOr<Record<string, CompressedLayer[]>>(file, {}));
  }

  get(diffId: string): CompressedLayer[] {
    return this.byDiffId[diffId] ?? [];
  }

  /** Remembers that `repo` (`host/path`) holds `blob`, the compressed form of `diffId`. */
  add(diffId: string, blob: Omit<CompressedLayer, 'repos'>, repo: string): Promise<void> {
    return this.lock.run(async () => {
      if (!this.byDiffId[diffId]) this.byDiffId[diffId] = [];
      const list = this.byDiffId[diffId];
      let entry = list.find((e) => e.digest === blob.digest);
      if (!entry) {
        entry = { ...blob, repos: [] };
        list.push(entry);
      }
      entry.repos = [...entry.repos.filter((r) => r !== repo), repo].slice(-MAX_REPOS);
      await replaceFile(this.file, JSON.stringify(this.byDiffId));
    });
  }
}
