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
  history?: { created?: string; created_by?: string; comment?: string; author?: string; empty_layer?: boolean }[];
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
  parent: Image;
  diff: Readable; // tar of the container's changes
}

export interface ImageService {
  /** name[:tag], name@digest, full or short ID; 404 `No such image: <ref>` when unknown. */
  resolve(ref: string): Promise<Image>;
  /** Makes the default `busybox` image from Debian's busybox-static when it is missing. */
  ensureDefault(): Promise<void>;
  commit(opts: CommitOptions): Promise<Image>;
  /** Number of images, for `/info`. */
  count(): number;
}
