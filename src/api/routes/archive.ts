/**
 * `docker cp`: HEAD/GET/PUT /containers/{id}/archive. The stat travels in
 * `X-Docker-Container-Path-Stat` (standard base64 JSON with Go FileMode bits); the copy itself is
 * `containers/archive.ts`.
 */
import type { Readable } from 'node:stream';
import { encodeStat } from '../../volumes/archive.js';
import type { Ctx } from '../context.js';
import { qBool, resOf } from '../http.js';
import type { Router } from '../router.js';

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

const pathOf = (ctx: Ctx) => ctx.query.get('path') ?? '';

async function headArchive(ctx: Ctx): Promise<void> {
  const stat = await ctx.services.containers.archive.statPath(ctx.params.id, pathOf(ctx));
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
  const { stat, tar } = await ctx.services.containers.archive.archivePath(ctx.params.id, pathOf(ctx));
  const res = resOf(ctx);
  res.writeHead(200, { [STAT_HEADER]: encodeStat(stat), 'Content-Type': 'application/x-tar' });
  tar.on('error', () => res.destroy());
  res.on('close', () => {
    if (!res.writableFinished) (tar as Readable).destroy();
  });
  tar.pipe(res);
}

async function putArchive(ctx: Ctx): Promise<void> {
  try {
    await ctx.services.containers.archive.extractToDir(ctx.params.id, pathOf(ctx), ctx.req, {
      noOverwriteDirNonDir: qBool(ctx.query, 'noOverwriteDirNonDir'),
      copyUIDGID: qBool(ctx.query, 'copyUIDGID'),
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
