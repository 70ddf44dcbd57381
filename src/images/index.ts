/**
 * The image layer: image records (config + ordered layers), references (name:tag, name@digest →
 * image ID), and the operations on them (import, load, save, tag, rmi, commit, history, prune).
 * Image ID = `sha256:` + digest of the image config JSON, as Docker does.
 */
import type { Readable } from 'node:stream';

/** The image config JSON (OCI image-spec `config.md`, Docker's superset). */
export interface ImageConfig {
  architecture: string;
  os: string;
  created?: string;
  author?: string;
  comment?: string;
  config: {
    User?: string;
    Env?: string[] | null;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, object> | null;
    Volumes?: Record<string, object> | null;
    StopSignal?: string;
    Healthcheck?: unknown;
    OnBuild?: string[] | null;
    Shell?: string[] | null;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: {
    created?: string;
    created_by?: string;
    comment?: string;
    author?: string;
    empty_layer?: boolean;
  }[];
}

export interface Image {
  id: string; // sha256:<config digest>
  config: ImageConfig;
  /** Uncompressed layer digests, bottom first (= config.rootfs.diff_ids). */
  diffIds: string[];
  repoTags: string[]; // familiar form: busybox:latest, 127.0.0.1:5000/team/app:v1
  repoDigests: string[];
  size: number;
  created: string;
  /** The image this one was committed from (Docker's `Parent`), when known locally. */
  parent?: string;
  lastTagTime?: string;
}

export interface CommitOptions {
  containerId: string;
  repo?: string;
  tag?: string;
  author?: string;
  comment?: string;
  changes?: string[];
  /** The container's config, whose Cmd/Env/… become the image's defaults (Docker's merge rules). */
  containerConfig: Partial<ImageConfig['config']>;
  /** The container's image; undefined when it was removed meanwhile. */
  parent?: Image;
  /** The layers under the container's diff (from its rootfs; they outlive a removed image). */
  baseDiffIds: string[];
  diff: Readable; // tar of the container's changes
}

export interface ImportOptions {
  /** `repo` may carry the tag (`docker import - app:1`). */
  repo?: string;
  tag?: string;
  message?: string;
  changes?: string[];
  platform?: string;
}

export interface DeleteItem {
  Untagged?: string;
  Deleted?: string;
}

export interface HistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

export interface PruneOptions {
  /** true (default): only untagged images; false: every image no container uses. */
  danglingOnly: boolean;
  until?: number; // unix seconds
  labels?: string[]; // `key`, `key=value`, `!key`…, as Docker's label filters
}

export interface ImageService {
  /** name[:tag], name@digest, full or short ID; 404 `No such image: <ref>` when unknown. */
  resolve(ref: string): Promise<Image>;
  /** Makes the default `busybox` image from Debian's busybox-static when it is missing. */
  ensureDefault(): Promise<void>;
  commit(opts: CommitOptions): Promise<Image>;
  /** Resolves once the default image being made at start (if any) is there. */
  settled(): Promise<void>;
  /** Number of images, for `/info`. */
  count(): number;
  list(): Image[];
  /** IDs of images whose parent is `id`. */
  children(id: string): string[];
  /** Tags (or digest-pins) `ref` (as the user or API wrote it: `docker.io/library/x:1` is fine). */
  tag(image: string, ref: string): Promise<void>;
  remove(ref: string, opts: { force?: boolean; noprune?: boolean }): Promise<DeleteItem[]>;
  prune(opts: PruneOptions): Promise<{ ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }>;
  history(ref: string): Promise<HistoryItem[]>;
  /** `docker import`: one layer from a tar (plain or gzip). */
  importTar(source: Readable, opts: ImportOptions): Promise<Image>;
  /** `docker load`: docker-archive (`manifest.json`) or OCI layout (`index.json`); returns the lines to print. */
  load(source: Readable): Promise<string[]>;
  /** `docker save`: OCI layout plus `manifest.json` and `repositories`, as moby ≥ 25 writes it. */
  save(refs: string[]): Promise<Readable>;

  // Building blocks for pull, build and other producers of images:
  /**
   * Applies a layer (plain or gzip tar; `expectDiffId` checks the uncompressed digest) and keeps it
   * from garbage collection until `release(diffId)`; make the image in between.
   */
  applyHeld(source: Readable, expectDiffId?: string): Promise<string>;
  /** Holds a layer already present from garbage collection until `release(diffId)`. */
  hold(diffId: string): void;
  release(diffId: string): void;
  /** Adds an image from its exact config bytes (ID = their sha256); every layer must be applied. */
  createFromConfig(configBytes: Buffer, opts?: { parent?: string }): Promise<Image>;
  /** Points a tag (`app:1`) or digest reference (`app@sha256:…`, a RepoDigest) at an image; returns the ID it moved from. */
  setRef(id: string, ref: string): Promise<string | undefined>;
  /** The exact config JSON of an image (for push). Layers: `rootfs.layerTar(diffId)`. */
  configBytes(id: string): Promise<Buffer>;
}
