/**
 * The storage layer: what the container life cycle asks of it. The service behind this interface
 * owns named and anonymous volumes (local driver and plugins), bind mounts, tmpfs, --volumes-from.
 */
import type { ContainerRecord, MountPoint } from '../model/container.js';
import type { Filters } from '../model/filters.js';
import type { ContainerView } from './scope.js';

/** An OCI runtime mount (runtime-spec `config.md` "Mounts"). */
export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface ResolvedMounts {
  /** Mounts for the runtime spec, in mount order. */
  oci: OciMount[];
  /** What inspect shows as `Mounts`. */
  points: MountPoint[];
}

/** A volume as the API shows it (`GET /volumes/{name}`). */
export interface Volume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local' | 'global';
  Options: Record<string, string> | null;
  Status?: Record<string, unknown>;
  UsageData?: { Size: number; RefCount: number } | null;
}

export interface CreateVolumeRequest {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

export interface VolumeService {
  /** Validates a create request's Binds/Mounts/Volumes/Tmpfs/VolumesFrom (400 for bad specs) and records volumes used. */
  prepare(record: ContainerRecord, imageVolumes: string[], rootfs?: string): Promise<MountPoint[]>;
  /** Just before start: mounts plugin volumes, copies image content into fresh volumes, returns runtime mounts. */
  mount(record: ContainerRecord, rootfs: string): Promise<ResolvedMounts>;
  /** After the container stopped: unmounts plugin volumes. Idempotent. */
  unmount(record: ContainerRecord): Promise<void>;
  /** On container removal: drops references; removes anonymous volumes when `removeAnonymous`. */
  release(record: ContainerRecord, removeAnonymous: boolean): Promise<void>;
  /**
   * Releases the plans of containers not in `alive` (a create that crashed before its record was
   * written), with the anonymous volumes they made; returns their IDs. Only at start-up.
   */
  releaseOrphans(alive: Set<string>): Promise<string[]>;

  // --- the volume API (`docker volume …`, `system df`, `docker cp`)
  create(req: CreateVolumeRequest): Promise<Volume>;
  /** 404 `get <name>: no such volume`. */
  inspect(name: string): Promise<Volume>;
  /** Filters `dangling`, `driver`, `label`, `name`. */
  list(filters?: Filters): Promise<{ Volumes: Volume[]; Warnings: string[] }>;
  /** 409 `remove <name>: volume is in use - [ids]`; `force` ignores a missing volume. */
  remove(name: string, force?: boolean): Promise<void>;
  /** Only anonymous volumes unless filter `all=true`; filters `label`, `label!`. */
  prune(filters?: Filters): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }>;
  /** Every volume with `UsageData` (`system df`). */
  usage(): Promise<Volume[]>;
  /** Container IDs that use a volume. */
  refs(name: string): string[];
  /** The container's filesystem as `docker cp` sees it: rootfs with its volumes and binds. */
  view(record: ContainerRecord, rootfs: string): Promise<ContainerView>;
  /** uid/gid of the container's `Config.User`, from the container's /etc/passwd and /etc/group. */
  containerUser(record: ContainerRecord, view: ContainerView): Promise<{ uid: number; gid: number }>;
  /** `local` plus discovered plugins (for `/info` `Plugins.Volume`). */
  driverNames(): Promise<string[]>;
}
