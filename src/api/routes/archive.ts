/**
 * `docker cp`: HEAD/GET/PUT /containers/{id}/archive. The stat travels in
 * `X-Docker-Container-Path-Stat` (standard base64 JSON with Go FileMode bits). Paths are resolved
 * inside the container's root with its volumes and binds (src/volumes/scope.ts); works on stopped
 * containers, whose rootfs the layer store mounts on demand.
 */
import type { Readable } from 'node:stream';
import type { ContainerRecord } from '../../model/container.js';
import { invalid } from '../../util/errors.js';
import { encodeStat, extractArchive, readArchive, statPath } from '../../volumes/archive.js';
import type { Ctx } from '../context.js';
import { qBool, resOf } from '../http.js';
import type { Router } from '../router.js';

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

async function viewOf(
  ctx: Ctx,
): Promise<{ record: ContainerRecord; view: Awaited<ReturnType<Ctx['services']['volumes']['view']>> }> {
  const record = ctx.services.containers.get(ctx.params.id);
  const p = ctx.query.get('path');
  if (p === null || p === '') throw invalid('Path cannot be empty');
  const rootfs = await ctx.services.rootfs.mount(record.Id);
  const view = await ctx.services.volumes.view(record, rootfs);
  return { record, view };
}

const nameOf = (ctx: Ctx, record: ContainerRecord) => ctx.params.id || record.Name.replace(/^\//, '');

async function headArchive(ctx: Ctx): Promise<void> {
  const { record, view } = await viewOf(ctx);
  const { stat } = await statPath(view, ctx.query.get('path')!, nameOf(ctx, record));
  const res = resOf(ctx);
  res.writeHead(200, {
    [STAT_HEADER]: encodeStat(stat),
    'Content-Type': 'application/json',
    'Content-Length': '0',
  });
  res.end();
}

async function getArchive(ctx: Ctx): Promise<void> {
  if (ctx.req.method === 'HEAD') return headArchive(ctx);
  const { record, view } = await viewOf(ctx);
  const { stat, tar } = await readArchive(view, ctx.query.get('path')!, nameOf(ctx, record));
  const res = resOf(ctx);
  res.writeHead(200, { [STAT_HEADER]: encodeStat(stat), 'Content-Type': 'application/x-tar' });
  tar.on('error', () => res.destroy());
  res.on('close', () => {
    if (!res.writableFinished) (tar as Readable).destroy();
  });
  tar.pipe(res);
}

async function putArchive(ctx: Ctx): Promise<void> {
  const { record, view } = await viewOf(ctx);
  const copyUIDGID = qBool(ctx.query, 'copyUIDGID');
  // `cp -a` owns the files by the container's user; without a user (or without -a) the tar's owners stay.
  const chown =
    copyUIDGID && record.Config.User ? await ctx.services.volumes.containerUser(record, view) : undefined;
  try {
    await extractArchive(view, ctx.query.get('path')!, ctx.req, {
      noOverwriteDirNonDir: qBool(ctx.query, 'noOverwriteDirNonDir'),
      chown,
      containerName: nameOf(ctx, record),
    });
  } catch (err) {
    ctx.req.resume(); // drain the rest of the tar so the client reads our answer
    throw err;
  }
  const res = resOf(ctx);
  res.writeHead(200, { 'Content-Length': '0' });
  res.end();
}

export function registerArchiveRoutes(router: Router): void {
  router.head('/containers/{id}/archive', headArchive);
  router.get('/containers/{id}/archive', getArchive);
  router.put('/containers/{id}/archive', putArchive);
}
