/**
 * The storage layer: what the container life cycle asks of it. The service behind this interface
 * owns named and anonymous volumes (local driver and plugins), bind mounts, tmpfs, --volumes-from.
 */
import type { ContainerRecord, MountPoint } from '../containers/types.js';

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

export interface VolumeService {
  /** Validates a create request's Binds/Mounts/Volumes/Tmpfs/VolumesFrom (400 for bad specs) and records volumes used. */
  prepare(record: ContainerRecord, imageVolumes: string[], rootfs?: string): Promise<MountPoint[]>;
  /** Just before start: mounts plugin volumes, copies image content into fresh volumes, returns runtime mounts. */
  mount(record: ContainerRecord, rootfs: string): Promise<ResolvedMounts>;
  /** After the container stopped: unmounts plugin volumes. Idempotent. */
  unmount(record: ContainerRecord): Promise<void>;
  /** On container removal: drops references; removes anonymous volumes when `removeAnonymous`. */
  release(record: ContainerRecord, removeAnonymous: boolean): Promise<void>;
}
