/** `/volumes…` (`docker volume …`) and `GET /system/df`. Handlers parse, validate and call one service. */
import { statusText } from '../../containers/status.js';
import type { CreateVolumeRequest } from '../../volumes/index.js';
import { invalid } from '../../util/errors.js';
import type { Ctx } from '../context.js';
import { versionAtLeast } from '../version.js';
import { json, noContent, parseFilters, qBool } from '../http.js';
import type { Router } from '../router.js';
import { readTyped } from '../validate/body.js';
import { volumeCreate } from '../validate/engine-types.js';
import { listable, listedVolume } from '../validate/listable.js';

function isStringMap(v: unknown): v is Record<string, string> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === 'string')
  );
}

async function listVolumes(ctx: Ctx) {
  const r = await ctx.services.volumes.list(parseFilters(ctx.query.get('filters')));
  return { ...r, Volumes: listable('volume', r.Volumes ?? [], listedVolume, (v) => v?.Name) };
}

async function createVolume(ctx: Ctx): Promise<void> {
  const body = await readTyped<CreateVolumeRequest & Record<string, unknown>>(ctx, volumeCreate, {});
  if (body.Name !== undefined && typeof body.Name !== 'string')
    throw invalid('invalid volume name: must be a string');
  if (body.Driver !== undefined && typeof body.Driver !== 'string')
    throw invalid('invalid volume driver: must be a string');
  if (body.DriverOpts != null && !isStringMap(body.DriverOpts))
    throw invalid('invalid DriverOpts: must be a map of strings');
  if (body.Labels != null && !isStringMap(body.Labels))
    throw invalid('invalid Labels: must be a map of strings');
  if (body.ClusterVolumeSpec) throw invalid('cluster volumes are only available in swarm mode');
  const v = await ctx.services.volumes.create({
    Name: body.Name,
    Driver: body.Driver,
    DriverOpts: body.DriverOpts,
    Labels: body.Labels,
  });
  json(ctx, 201, v);
}

/** `docker system df`: counts and sizes for images, containers, volumes (1.50 shape). */
async function systemDf(ctx: Ctx): Promise<void> {
  const types = ctx.query.getAll('type');
  const want = (t: string) => types.length === 0 || types.includes(t);
  for (const t of types)
    if (!['container', 'image', 'volume', 'build-cache'].includes(t))
      throw invalid(`unknown object type: ${t}`);
  const s = ctx.services;
  const out: Record<string, unknown> = {};
  const containers = s.containers.list();
  if (want('image')) {
    const list = s.images.list();
    // Per-layer sizes come from the layer store when it offers them (the overlay store does).
    const layers = s.rootfs as unknown as { layerInfo?: (diffId: string) => { size: number } | undefined };
    const layerSize = (id: string) =>
      typeof layers.layerInfo === 'function' ? layers.layerInfo(id)?.size : undefined;
    const users = new Map<string, number>();
    for (const img of list) for (const id of new Set(img.diffIds)) users.set(id, (users.get(id) ?? 0) + 1);
    const known = [...users.keys()].every((id) => layerSize(id) !== undefined);
    out.LayersSize = known
      ? [...users.keys()].reduce((n, id) => n + (layerSize(id) ?? 0), 0)
      : list.reduce((n, img) => n + img.size, 0);
    out.Images = list.map((img) => ({
      Id: img.id,
      ParentId: '',
      RepoTags: img.repoTags,
      RepoDigests: img.repoDigests,
      Created: Math.floor(Date.parse(img.created) / 1000) || 0,
      Size: img.size,
      SharedSize: known
        ? [...new Set(img.diffIds)]
            .filter((id) => (users.get(id) ?? 0) > 1)
            .reduce((n, id) => n + (layerSize(id) ?? 0), 0)
        : -1,
      VirtualSize: img.size,
      Labels: img.config.config?.Labels ?? {},
      Containers: containers.filter((c) => c.Image === img.id).length,
    }));
  }
  if (want('container')) {
    out.Containers = containers.map((c) => ({
      Id: c.Id,
      Names: [c.Name],
      Image: c.ImageName,
      ImageID: c.Image,
      Command: [c.Path, ...c.Args].join(' '),
      Created: Math.floor(Date.parse(c.Created) / 1000) || 0,
      State: c.State.Status,
      Status: statusText(c),
      Labels: c.Config.Labels ?? {},
      Mounts: c.Mounts ?? [],
    }));
  }
  if (want('volume')) out.Volumes = await s.volumes.usage();
  if (want('build-cache')) out.BuildCache = await s.builds.cacheRecords();
  json(ctx, 200, out);
}

export function registerVolumeRoutes(router: Router): void {
  router.get('/volumes', async (ctx) =>
    json(ctx, 200, await listVolumes(ctx)),
  );
  router.post('/volumes/create', createVolume);
  router.post('/volumes/prune', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    // Before API 1.42 prune removed every unused volume; since then only anonymous ones unless all=true.
    if (!versionAtLeast(ctx.version, '1.42') && !filters.has('all')) filters.set('all', ['true']);
    json(ctx, 200, await ctx.services.volumes.prune(filters));
  });
  router.get('/volumes/{name}', async (ctx) =>
    json(ctx, 200, await ctx.services.volumes.inspect(ctx.params.name)),
  );
  router.delete('/volumes/{name}', async (ctx) => {
    await ctx.services.volumes.remove(ctx.params.name, qBool(ctx.query, 'force'));
    noContent(ctx);
  });
  router.get('/system/df', systemDf);
}
