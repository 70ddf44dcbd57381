/**
 * The build service under `<dataRoot>/build`:
 *
 *   cache.json   the step cache (see cache.ts)
 *   tmp/<id>/    one directory per running build (its context, heredoc files); emptied at start
 *   scratch/<id> markers of scratch filesystems a COPY/WORKDIR step holds, removed at start
 *                with their layers should berthd die mid-step
 *
 * Step containers carry the label `berth.build.step`; any left over from a crash are removed
 * when the service opens.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ContainerService } from '../containers/service.js';
import type { ImageService } from '../images/index.js';
import { invalid } from '../util/errors.js';
import type { LayerStore, RootfsStore } from '../layers/index.js';
import { refKey } from '../util/reference.js';
import { shortId } from '../util/ids.js';
import { log } from '../util/log.js';
import { Builder } from './builder.js';
import { BuildCache } from './cache.js';
import { receiveContext } from './context.js';
import { STEP_LABEL } from './run-step.js';
import type { BuildCacheRecord, BuildOutput, BuildRequest, BuildService } from './index.js';

export interface BuildServiceOptions {
  root: string;
  images: ImageService;
  rootfs: RootfsStore & LayerStore;
  containers: ContainerService;
}

export class BuilderService implements BuildService {
  private constructor(
    private readonly o: BuildServiceOptions,
    private readonly cache: BuildCache,
  ) {}

  static async open(o: BuildServiceOptions): Promise<BuilderService> {
    const tmp = path.join(o.root, 'tmp');
    const scratch = path.join(o.root, 'scratch');
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(tmp, { recursive: true });
    await fs.mkdir(scratch, { recursive: true });
    for (const id of await fs.readdir(scratch)) {
      await o.rootfs
        .remove(id)
        .catch((err) => log.warn('build: cannot remove a scratch layer left by a crash', { id, err }));
      await fs.rm(path.join(scratch, id), { force: true });
    }
    for (const c of o.containers.list()) {
      if (c.Config.Labels?.[STEP_LABEL] === undefined) continue;
      await o.containers
        .remove(c.Id, { force: true, volumes: true })
        .catch((err) => log.warn('build: cannot remove a step container left by a crash', { id: c.Id, err }));
    }
    return new BuilderService(o, await BuildCache.open(o.root));
  }

  async build(req: BuildRequest, out: BuildOutput): Promise<string> {
    const opts = req.options;
    const tags = opts.tags.map((t) => {
      try {
        return refKey(t);
      } catch {
        throw invalid(`invalid tag ${JSON.stringify(t)}: invalid reference format`);
      }
    });
    const work = path.join(this.o.root, 'tmp', randomBytes(8).toString('hex'));
    await fs.mkdir(work, { recursive: true });
    const scratchDir = path.join(this.o.root, 'scratch');
    const shown: BuildOutput = opts.quiet ? { stream: () => {}, aux: (v) => out.aux(v) } : out;
    try {
      const ctx = await receiveContext(req.context, {
        work,
        contentType: req.contentType,
        dockerfile: opts.dockerfile,
      });
      const builder = new Builder(
        {
          images: this.o.images,
          rootfs: this.o.rootfs,
          containers: this.o.containers,
          cache: this.cache,
          work,
          buildRoot: this.o.root,
          track: {
            add: (id) => fs.writeFile(path.join(scratchDir, id), ''),
            remove: (id) => fs.rm(path.join(scratchDir, id), { force: true }),
          },
        },
        opts,
        shown,
        req.signal,
      );
      const id = await builder.build(ctx.dockerfile, ctx.root, ctx.dockerfileName);
      shown.stream(`Successfully built ${shortId(id)}\n`);
      for (const t of tags) {
        await this.o.images.setRef(id, t);
        shown.stream(`Successfully tagged ${t}\n`);
      }
      if (opts.quiet) out.stream(`${id}\n`);
      return id;
    } finally {
      await fs.rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }

  async prune(opts: { all: boolean }): Promise<{ CachesDeleted: string[] | null; SpaceReclaimed: number }> {
    void opts; // every entry is reclaimable: nothing pins a cache entry but the image it names
    const deleted: string[] = [];
    let reclaimed = 0;
    const entries = this.cache.list();
    const tagged = new Set(
      this.o.images
        .list()
        .filter((i) => i.repoTags.length > 0)
        .map((i) => i.id),
    );
    // Children first: an image is removable once nothing is built on it.
    const order = entries.sort(([, a], [, b]) => (a.created < b.created ? 1 : -1));
    for (const [key, e] of order) {
      deleted.push(key);
      reclaimed += e.size;
      if (tagged.has(e.image)) continue;
      await this.o.images.remove(e.image, { force: false }).catch(() => {});
    }
    await this.cache.drop(deleted);
    return { CachesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  cacheRecords(): BuildCacheRecord[] {
    return this.cache.list().map(([key, e]) => ({
      ID: key.slice(0, 25),
      Parent: '',
      Type: 'regular',
      Description: e.description ?? '',
      InUse: false,
      Shared: false,
      Size: e.size,
      CreatedAt: e.created,
      LastUsedAt: e.lastUsed ?? null,
      UsageCount: 1,
    }));
  }
}

export async function openBuildService(o: BuildServiceOptions): Promise<BuilderService> {
  return BuilderService.open(o);
}
