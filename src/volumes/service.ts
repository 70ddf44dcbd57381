/**
 * Storage before the volumes work lands: containers get no volumes or bind mounts, and a request
 * for one is refused clearly rather than silently ignored. Replaced by the full service.
 */
import type { ContainerDirectory } from '../containers/directory.js';
import type { ContainerRecord, MountPoint } from '../containers/types.js';
import type { DaemonConfig } from '../daemon/config.js';
import type { EventBus } from '../daemon/events.js';
import { notImplemented } from '../util/errors.js';
import type { ResolvedMounts, VolumeService } from './index.js';

export interface VolumeServiceOptions {
  config: DaemonConfig;
  events: EventBus;
  containers: ContainerDirectory;
}

class NoVolumes implements VolumeService {
  async prepare(record: ContainerRecord, imageVolumes: string[]): Promise<MountPoint[]> {
    const h = record.HostConfig;
    if (h.Binds?.length || h.Mounts?.length || h.VolumesFrom?.length || Object.keys(h.Tmpfs ?? {}).length || Object.keys(record.Config.Volumes ?? {}).length || imageVolumes.length)
      throw notImplemented('volumes and mounts are not supported yet');
    return [];
  }
  async mount(): Promise<ResolvedMounts> {
    return { oci: [], points: [] };
  }
  async unmount(): Promise<void> {}
  async release(): Promise<void> {}
}

export async function openVolumeService(_opts: VolumeServiceOptions): Promise<VolumeService> {
  return new NoVolumes();
}
