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
import type { DistributionService } from '../distribution/service.js';
import type { ImageService } from '../images/index.js';
import { conflict, invalid } from '../util/errors.js';
import type { LayerStore, RootfsStore } from '../layers/index.js';
import { refKey } from '../util/reference.js';
import { shortId } from '../util/ids.js';
import { log } from '../util/log.js';
import { Builder } from './builder.js';
import { type BuildPruneOptions, selectForPrune } from './prune.js';
import { BuildCache } from './cache.js';
import { receiveContext } from './context.js';
import { STEP_LABEL } from './run-step.js';
import type { BuildCacheRecord, BuildOutput, BuildRequest, BuildService } from './index.js';

export interface BuildServiceOptions {
  root: string;
  images: ImageService;
  rootfs: RootfsStore & LayerStore;
  containers: ContainerService;
  distribution: DistributionService;
}

export class BuilderService implements BuildService {
  /** Running builds by the `buildid` their client gave, for `POST /build/cancel`. */
  private readonly running = new Map<string, AbortController>();

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
    if (req.buildId !== undefined && this.running.has(req.buildId))
      throw conflict(`a build with ID ${JSON.stringify(req.buildId)} is already running`);
    // Cancelled by the client going away or by `POST /build/cancel` with its build ID.
    const cancel = new AbortController();
    const onAbort = () => cancel.abort();
    if (req.signal.aborted) cancel.abort();
    else req.signal.addEventListener('abort', onAbort, { once: true });
    if (req.buildId !== undefined) this.running.set(req.buildId, cancel);
    const work = path.join(this.o.root, 'tmp', randomBytes(8).toString('hex'));
    const scratchDir = path.join(this.o.root, 'scratch');
    const shown: BuildOutput = opts.quiet
      ? { stream: () => {}, send: () => {}, aux: (v) => out.aux(v) }
      : out;
    try {
      await fs.mkdir(work, { recursive: true });
      const t0 = performance.now();
      const ctx = await receiveContext(req.context, {
        work,
        contentType: req.contentType,
        dockerfile: opts.dockerfile,
      });
      log.debug('build context received', { ms: Math.round(performance.now() - t0) });
      const builder = new Builder(
        {
          images: this.o.images,
          rootfs: this.o.rootfs,
          containers: this.o.containers,
          cache: this.cache,
          work,
          buildRoot: this.o.root,
          pull: (ref, creds, progress) => this.o.distribution.pull(ref, creds, progress),
          track: {
            add: (id) => fs.writeFile(path.join(scratchDir, id), ''),
            remove: (id) => fs.rm(path.join(scratchDir, id), { force: true }),
          },
        },
        opts,
        shown,
        cancel.signal,
      );
      const id = await builder.build(ctx.dockerfile, ctx.root, ctx.dockerfileName);
      // A cancel that came after the last step still tags nothing.
      if (cancel.signal.aborted) throw invalid('Build cancelled');
      log.debug('build steps done', { ms: Math.round(performance.now() - t0) });
      shown.stream(`Successfully built ${shortId(id)}\n`);
      for (const t of tags) {
        // An unchanged rebuild finds its tags in place: no need to rewrite the reference store.
        const current = await this.o.images.resolve(t).catch(() => undefined);
        if (current?.id !== id) await this.o.images.setRef(id, t);
        shown.stream(`Successfully tagged ${t}\n`);
      }
      if (opts.quiet) out.stream(`${id}\n`);
      log.debug('build tagged', { ms: Math.round(performance.now() - t0) });
      return id;
    } finally {
      req.signal.removeEventListener('abort', onAbort);
      if (req.buildId !== undefined && this.running.get(req.buildId) === cancel) this.running.delete(req.buildId);
      await fs.rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }

  cancel(buildId: string): boolean {
    const c = this.running.get(buildId);
    c?.abort();
    return c !== undefined;
  }

  /**
   * `POST /build/prune` (prune.ts chooses): dropped step entries take their images along when
   * those are untagged and nothing is built on them (newest first, so a chain goes whole);
   * dropped cache mounts are emptied.
   */
  async prune(opts: BuildPruneOptions): Promise<{ CachesDeleted: string[] | null; SpaceReclaimed: number }> {
    const all = await this.records();
    const chosen = new Set(selectForPrune(all.map((r) => r.record), opts, Date.now()));
    const drop = all.filter((r) => chosen.has(r.record));
    const deleted: string[] = [];
    let reclaimed = 0;
    const steps = drop.filter((r) => r.key !== undefined);
    await this.cache.drop(steps.map((r) => r.key!));
    const kept = new Set(this.cache.list().map(([, e]) => e.image));
    const tagged = new Set(
      this.o.images
        .list()
        .filter((i) => i.repoTags.length > 0)
        .map((i) => i.id),
    );
    steps.sort((a, b) => (a.record.CreatedAt < b.record.CreatedAt ? 1 : -1));
    for (const r of steps) {
      deleted.push(r.key!);
      const image = r.image!;
      if (tagged.has(image) || kept.has(image)) continue;
      const items = await this.o.images.remove(image, { force: false }).catch(() => []);
      if (items.some((i) => i.Deleted === image)) reclaimed += r.record.Size;
    }
    for (const r of drop) {
      if (r.mount === undefined) continue;
      reclaimed += r.record.Size;
      await fs.rm(r.mount, { recursive: true, force: true });
      deleted.push(`cachemount:${path.basename(r.mount)}`);
    }
    return { CachesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  async cacheRecords(): Promise<BuildCacheRecord[]> {
    return (await this.records()).map((r) => r.record);
  }

  /**
   * The step entries and cache mounts as BuildKit-style records. A step is `Shared` when a
   * tagged image is built on its image (or is it): `builder prune` keeps it without `-a`.
   */
  private async records(): Promise<{ record: BuildCacheRecord; key?: string; image?: string; mount?: string }[]> {
    const images = this.o.images.list();
    const byId = new Map(images.map((i) => [i.id, i]));
    const shared = new Set<string>();
    for (const img of images) {
      if (img.repoTags.length === 0) continue;
      for (let p: typeof img | undefined = img; p && !shared.has(p.id); p = p.parent ? byId.get(p.parent) : undefined)
        shared.add(p.id);
    }
    const out: { record: BuildCacheRecord; key?: string; image?: string; mount?: string }[] = this.cache
      .list()
      .map(([key, e]) => ({
        key,
        image: e.image,
        record: {
          ID: key.slice(0, 25),
          Parents: null,
          Type: 'regular',
          Description: e.description ?? '',
          InUse: false,
          Shared: shared.has(e.image),
          Size: e.size,
          CreatedAt: e.created,
          LastUsedAt: e.lastUsed ?? null,
          UsageCount: 1,
        },
      }));
    const mounts = path.join(this.o.root, 'cache-mounts');
    for (const name of await fs.readdir(mounts).catch(() => [] as string[])) {
      const dir = path.join(mounts, name);
      const st = await fs.stat(dir).catch(() => undefined);
      if (!st) continue;
      out.push({
        mount: dir,
        record: {
          ID: name.slice(0, 25),
          Parents: null,
          Type: 'exec.cachemount',
          Description: 'cached mount (RUN --mount=type=cache)',
          InUse: false,
          Shared: false,
          Size: await dirSize(dir),
          CreatedAt: st.birthtime.toISOString(),
          LastUsedAt: st.mtime.toISOString(),
          UsageCount: 1,
        },
      });
    }
    return out;
  }
}

/** Bytes of the regular files below `dir`. */
async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await dirSize(p);
    else if (e.isFile()) total += (await fs.lstat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

export async function openBuildService(o: BuildServiceOptions): Promise<BuilderService> {
  return BuilderService.open(o);
}
