/**
 * The layer layer: image layers unpacked once onto disk and shared (overlayfs lower dirs), and the
 * read-write layer of each container (overlayfs upper dir). Also the diff of a container's layer
 * as a tar with whiteouts, for commit and `docker diff`.
 */
import type { Readable } from 'node:stream';

export interface Change {
  Path: string;
  Kind: 0 | 1 | 2; // 0 modified, 1 added, 2 deleted
}

export interface RootfsStore {
  /** Creates the container's read-write layer over the image's layers (by diff IDs, bottom first). */
  create(containerId: string, diffIds: string[]): Promise<void>;
  /** Mounts the overlay and returns the rootfs path; idempotent. */
  mount(containerId: string): Promise<string>;
  unmount(containerId: string): Promise<void>;
  remove(containerId: string): Promise<void>;
  /**
   * Removes the read-write layers of containers not in `keep` (a create that crashed between its
   * layer and its record); returns their IDs. Only at start-up, before any create.
   */
  removeOrphans(keep: Set<string>): Promise<string[]>;
  /** The image layers (diff IDs, bottom first) under the container's read-write layer. */
  baseLayers(containerId: string): Promise<string[]>;
  changes(containerId: string): Promise<Change[]>;
  /** Bytes of regular files in the container's read-write layer (`SizeRw`). */
  sizeRw(containerId: string): Promise<number>;
  /** Tar of the container's changes (whiteouts as `.wh.` entries), for commit. */
  diffTar(containerId: string, opts?: { clampMtime?: Date }): Promise<Readable>;
  /** Tar of the container's whole filesystem (`docker export`). */
  exportTar(containerId: string): Promise<Readable>;
}

export interface LayerInfo {
  /** sha256 of the uncompressed layer tar. */
  diffId: string;
  /** Sum of the regular files' sizes. */
  size: number;
}

/** The image side of the layer store: layers by diff ID, unpacked once and shared. */
export interface LayerStore {
  /**
   * Unpacks a layer tar (plain or gzip) unless a layer with its diff ID exists already. Checks the
   * tar first (400 `Error processing tar file: …` for hostile or broken input; nothing is left
   * behind) and, with `expectDiffId`, that the uncompressed bytes have that digest.
   */
  applyLayer(source: Readable, opts?: { expectDiffId?: string }): Promise<LayerInfo>;
  layerInfo(diffId: string): LayerInfo | undefined;
  /** The layer's tar exactly as it was applied (uncompressed), for `save`. */
  layerTar(diffId: string): Readable;
  /** Removes layers that are neither in `keep` nor under a container's rootfs; returns bytes freed. */
  gc(keep: Set<string>): Promise<number>;
}
