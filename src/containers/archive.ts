/**
 * `docker cp` on a container: paths resolved inside its root with its volumes and binds
 * (volumes/scope.ts), on running and stopped containers alike (the rootfs is mounted on demand).
 */
import type { Readable } from 'node:stream';
import type { LayerStore, RootfsStore } from '../layers/index.js';
import type { ContainerDirectory } from '../model/container-directory.js';
import type { ContainerRecord } from '../model/container.js';
import { invalid } from '../util/errors.js';
import { extractArchive, type PathStat, readArchive, statPath } from '../volumes/archive.js';
import type { VolumeService } from '../volumes/index.js';

export interface ExtractRequest {
  noOverwriteDirNonDir: boolean;
  /** `cp -a`: the files are owned by the container's user (when it names one). */
  copyUIDGID: boolean;
}

export class ContainerArchive {
  constructor(
    private readonly containers: ContainerDirectory,
    private readonly rootfs: RootfsStore & LayerStore,
    private readonly volumes: VolumeService,
  ) {}

  private async viewOf(ref: string, p: string) {
    const record = this.containers.get(ref);
    if (p === '') throw invalid('Path cannot be empty');
    const view = await this.volumes.view(record, await this.rootfs.mount(record.Id));
    return { record, view, name: ref || nameOf(record) };
  }

  /** `HEAD …/archive`: what the path is (the last component is not followed). */
  async statPath(ref: string, p: string): Promise<PathStat> {
    const { view, name } = await this.viewOf(ref, p);
    return (await statPath(view, p, name)).stat;
  }

  /** `GET …/archive`: the path's stat and a tar of it, entries named after its base name. */
  async archivePath(ref: string, p: string): Promise<{ stat: PathStat; tar: Readable }> {
    const { view, name } = await this.viewOf(ref, p);
    return readArchive(view, p, name);
  }

  /** `PUT …/archive`: extracts a (possibly gzipped) tar into the directory `p`. */
  async extractToDir(ref: string, p: string, tar: Readable, req: ExtractRequest): Promise<void> {
    const { record, view, name } = await this.viewOf(ref, p);
    const chown = req.copyUIDGID && record.Config.User ? await this.volumes.containerUser(record, view) : undefined;
    await extractArchive(view, p, tar, { noOverwriteDirNonDir: req.noOverwriteDirNonDir, chown, containerName: name });
  }
}

const nameOf = (record: ContainerRecord) => record.Name.replace(/^\//, '');
