/**
 * `/images/*`, `/commit`, and the two container routes that read a container's filesystem
 * (`/containers/{id}/changes` for `docker diff`, `/containers/{id}/export`). Each handler parses,
 * validates and calls one service method.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { ContainerRecord } from '../../model/container.js';
import type { Image, ImageConfig } from '../../images/index.js';
import { matchesReferenceFilter, parseReference, type Reference, withDefaultTag } from '../../util/reference.js';
import { BerthError, invalid } from '../../util/errors.js';
import type { Ctx } from '../context.js';
import { versionAtLeast } from '../version.js';
import { checkFilterKeys, json, parseFilters, qBool, registryAuth, resOf } from '../http.js';
import type { Filters } from '../../model/filters.js';
import type { Router } from '../router.js';
import { lazyJsonMessages, startJsonMessages } from '../streams.js';
import { readTyped } from '../validate/body.js';
import { containerConfig as commitConfig } from '../validate/engine-types.js';

const unix = (iso: string) => Math.floor(Date.parse(iso) / 1000) || 0;

/** Reads what is left of a request body (after a refused upload) so the client sees our answer. */
async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return;
  req.unpipe();
  req.removeAllListeners('readable');
  req.resume();
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 30_000);
    const done = () => {
      clearTimeout(t);
      resolve();
    };
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
  });
}

async function withBody<T>(ctx: Ctx, fn: (body: Readable) => Promise<T>): Promise<T> {
  try {
    return await fn(ctx.req);
  } catch (err) {
    await drain(ctx.req);
    throw err;
  }
}

function usersOf(ctx: Ctx): Map<string, number> {
  const m = new Map<string, number>();
  let list: ContainerRecord[] = [];
  try {
    list = ctx.services.containers.list();
  } catch {
    list = [];
  }
  for (const c of list) m.set(c.Image, (m.get(c.Image) ?? 0) + 1);
  return m;
}

// ---- list ----

/** `before`, `since`, `until` values: an image reference, or (until) a timestamp or duration. */
function timeArg(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const d = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(v);
  if (d) {
    const secs = Number(d[1]) * { ns: 1e-9, us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }[d[2] as 's'];
    return Date.now() / 1000 - secs;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalid(`failed to parse value as time or duration: "${v}"`);
  return t / 1000;
}

async function listImages(ctx: Ctx): Promise<void> {
  const s = ctx.services.images;
  await s.settled();
  const filters = parseFilters(ctx.query.get('filters'));
  const legacy = ctx.query.get('filter');
  if (legacy) filters.set('reference', [...(filters.get('reference') ?? []), legacy]);
  checkFilterKeys(filters, ['dangling', 'label', 'before', 'since', 'reference', 'until']);
  const all = qBool(ctx.query, 'all');
  const dangling = filters.get('dangling');
  if (dangling?.some((v) => !['true', 'false', '1', '0'].includes(v)))
    throw invalid(`invalid filter 'dangling=${dangling.join(',')}'`);
  const before = filters.get('before')?.map((r) => s.resolve(r));
  const since = filters.get('since')?.map((r) => s.resolve(r));
  const beforeT = before ? Math.min(...(await Promise.all(before)).map((i) => unix(i.created))) : undefined;
  const sinceT = since ? Math.max(...(await Promise.all(since)).map((i) => unix(i.created))) : undefined;
  const until = filters.get('until')?.map(timeArg);
  const labels = filters.get('label') ?? [];
  const refs = filters.get('reference') ?? [];
  const used = usersOf(ctx);
  const out = [];
  for (const img of s.list()) {
    const created = unix(img.created);
    const isDangling = img.repoTags.length === 0;
    if (dangling?.length) {
      const want = dangling.some((v) => v === 'true' || v === '1');
      if (want !== isDangling) continue;
    }
    if (!all && isDangling && !dangling?.length && s.children(img.id).length) continue;
    if (beforeT !== undefined && !(created < beforeT)) continue;
    if (sinceT !== undefined && !(created > sinceT)) continue;
    if (until && !until.every((u) => created < u)) continue;
    if (labels.length && !matchLabelFilters(img.config.config?.Labels ?? {}, labels)) continue;
    let repoTags = img.repoTags;
    let repoDigests = img.repoDigests;
    if (refs.length) {
      repoTags = img.repoTags.filter((t) => refs.some((r) => matchesReferenceFilter(r, t)));
      repoDigests = img.repoDigests.filter((t) => refs.some((r) => matchesReferenceFilter(r, t)));
      if (!repoTags.length && !repoDigests.length) continue;
    }
    const item: Record<string, unknown> = {
      Containers: used.get(img.id) ?? 0,
      Created: created,
      Id: img.id,
      Labels: img.config.config?.Labels ?? {},
      ParentId: img.parent ?? '',
      RepoDigests: repoDigests,
      RepoTags: repoTags,
      SharedSize: -1,
      Size: img.size,
    };
    if (!versionAtLeast(ctx.version, '1.44')) item.VirtualSize = img.size;
    out.push(item);
  }
  out.sort((a, b) => (b.Created as number) - (a.Created as number));
  json(ctx, 200, out);
}

function matchLabelFilters(labels: Record<string, string>, filters: string[]): boolean {
  return filters.every((f) => {
    const ne = f.indexOf('!=');
    if (ne > 0) return labels[f.slice(0, ne)] !== f.slice(ne + 2);
    const eq = f.indexOf('=');
    if (eq > 0) return labels[f.slice(0, eq)] === f.slice(eq + 1);
    return f in labels;
  });
}

// ---- inspect, history ----

function inspectShape(ctx: Ctx, img: Image) {
  const c = img.config;
  const rc = c.config ?? {};
  const config: Record<string, unknown> = {
    Hostname: '',
    Domainname: '',
    User: rc.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ExposedPorts: rc.ExposedPorts ?? undefined,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: rc.Env ?? null,
    Cmd: rc.Cmd ?? null,
    Healthcheck: rc.Healthcheck ?? undefined,
    Image: '',
    Volumes: rc.Volumes ?? null,
    WorkingDir: rc.WorkingDir ?? '',
    Entrypoint: rc.Entrypoint ?? null,
    OnBuild: rc.OnBuild ?? null,
    Labels: rc.Labels ?? null,
    StopSignal: rc.StopSignal ?? undefined,
    Shell: rc.Shell ?? undefined,
  };
  const rootfs = ctx.services.rootfs as unknown as { layerDir?: (d: string) => string };
  const dirs = rootfs.layerDir ? img.diffIds.map((d) => rootfs.layerDir!(d)).reverse() : [];
  const out: Record<string, unknown> = {
    Id: img.id,
    RepoTags: img.repoTags,
    RepoDigests: img.repoDigests,
    Parent: img.parent ?? '',
    Comment: c.comment ?? '',
    Created: img.created,
    DockerVersion: '',
    Author: c.author ?? '',
    Config: config,
    Architecture: c.architecture,
    Os: c.os,
    Size: img.size,
    GraphDriver: {
      Data: dirs.length
        ? { MergedDir: '', UpperDir: dirs[0], LowerDir: dirs.slice(1).join(':') || undefined }
        : {},
      Name: 'overlay2',
    },
    RootFS: { Type: 'layers', Layers: img.diffIds },
    Metadata: { LastTagTime: img.lastTagTime ?? '0001-01-01T00:00:00Z' },
  };
  if ((c as ImageConfig & { variant?: string }).variant)
    out.Variant = (c as ImageConfig & { variant?: string }).variant;
  if (!versionAtLeast(ctx.version, '1.44')) out.VirtualSize = img.size;
  return out;
}

// ---- create (import / pull) ----

const changesOf = (q: URLSearchParams) =>
  q
    .getAll('changes')
    .flatMap((c) => c.split('\n'))
    .filter((c) => c.trim() !== '');

async function createImage(ctx: Ctx): Promise<void> {
  const q = ctx.query;
  const fromSrc = q.get('fromSrc');
  const fromImage = q.get('fromImage');
  if (fromSrc !== null && fromSrc !== '') {
    if (fromSrc !== '-')
      throw invalid(
        `importing from a URL is not supported: ${fromSrc} (send the tar as the request body with fromSrc=-)`,
      );
    const img = await withBody(ctx, (body) =>
      ctx.services.images.importTar(body, {
        repo: q.get('repo') || undefined,
        tag: q.get('tag') || undefined,
        message: q.get('message') || undefined,
        changes: changesOf(q),
        platform: q.get('platform') || undefined,
      }),
    );
    const out = startJsonMessages(resOf(ctx));
    out.status(img.id);
    out.end();
    return;
  }
  if (fromImage) {
    const tag = q.get('tag');
    // A digest in `tag` (`docker pull repo@sha256:…` sends it there) is a digest.
    const raw = fromImage.includes('@') || !tag ? fromImage : /^[a-z0-9]+:[a-f0-9]{32,}$/.test(tag) ? `${fromImage}@${tag}` : `${fromImage}:${tag}`;
    let ref: Reference;
    try {
      ref = withDefaultTag(parseReference(raw));
    } catch {
      throw invalid(`invalid reference format: ${raw}`);
    }
    await drain(ctx.req);
    const out = lazyJsonMessages(resOf(ctx));
    try {
      await ctx.services.distribution.pull(ref, registryAuth(ctx.req), out);
    } catch (err) {
      if (!out.started) throw err;
      out.error((err as Error).message);
    }
    out.end();
    return;
  }
  throw invalid('fromImage or fromSrc is required');
}

// ---- load / save ----

async function loadImages(ctx: Ctx): Promise<void> {
  const lines = await withBody(ctx, (body) => ctx.services.images.load(body));
  const out = startJsonMessages(resOf(ctx));
  for (const l of lines) out.stream(`${l}\n`);
  out.end();
}

async function saveImages(ctx: Ctx, names: string[]): Promise<void> {
  if (!names.length) throw invalid('no image names given');
  const tar = await ctx.services.images.save(names);
  const res = resOf(ctx);
  res.writeHead(200, { 'Content-Type': 'application/x-tar' });
  tar.on('error', () => res.destroy());
  // A client that stops reading (`docker save x | head`) must not leave the archive writer failing.
  res.on('close', () => tar.destroy());
  tar.pipe(res);
}

// ---- commit ----

async function commit(ctx: Ctx): Promise<void> {
  const q = ctx.query;
  const ref = q.get('container');
  if (!ref) throw invalid('container is required');
  const body = await readTyped<Partial<ImageConfig['config']> | null>(
    ctx,
    commitConfig,
    null as unknown as Partial<ImageConfig['config']>,
  ).catch((err) => {
    if (err instanceof BerthError) throw err;
    throw invalid(String(err));
  });
  const svc = ctx.services;
  const c = svc.containers.get(ref);
  const parent = await svc.images.resolve(c.Image).catch(() => undefined);
  const containerConfig: Partial<ImageConfig['config']> = {
    User: c.Config.User,
    Env: c.Config.Env,
    Cmd: c.Config.Cmd,
    Entrypoint: c.Config.Entrypoint,
    WorkingDir: c.Config.WorkingDir,
    Labels: c.Config.Labels,
    ExposedPorts: c.Config.ExposedPorts,
    Volumes: c.Config.Volumes,
    StopSignal: c.Config.StopSignal,
    Healthcheck: c.Config.Healthcheck,
    OnBuild: c.Config.OnBuild,
  };
  if (body && typeof body === 'object') {
    for (const [k, v] of Object.entries(body))
      if (v !== undefined && v !== null && v !== '') (containerConfig as Record<string, unknown>)[k] = v;
  }
  const pause = qBool(q, 'pause', true);
  let paused = false;
  if (pause && c.State.Running && !c.State.Paused) {
    await svc.containers.pause(c.Id);
    paused = true;
  }
  let id: string;
  try {
    const diff = await svc.rootfs.diffTar(c.Id);
    const img = await svc.images.commit({
      containerId: c.Id,
      repo: q.get('repo') || undefined,
      tag: q.get('tag') || undefined,
      author: q.get('author') || undefined,
      comment: q.get('comment') || undefined,
      changes: changesOf(q),
      containerConfig,
      parent,
      baseDiffIds: await svc.rootfs.baseLayers(c.Id),
      diff,
    });
    id = img.id;
  } finally {
    if (paused) await svc.containers.unpause(c.Id);
  }
  json(ctx, 201, { Id: id });
}

// ---- prune ----

async function prune(ctx: Ctx): Promise<void> {
  const filters: Filters = parseFilters(ctx.query.get('filters'));
  checkFilterKeys(filters, ['dangling', 'label', 'label!', 'until']);
  const dangling = filters.get('dangling') ?? ['true'];
  if (dangling.some((v) => !['true', 'false', '1', '0'].includes(v)))
    throw invalid(`invalid filter 'dangling=${dangling.join(',')}'`);
  const until = filters.get('until')?.map(timeArg);
  const labels = [
    ...(filters.get('label') ?? []),
    ...(filters.get('label!') ?? []).map((l) => (l.includes('=') ? l.replace('=', '!=') : `!${l}`)),
  ];
  const result = await ctx.services.images.prune({
    danglingOnly: dangling.some((v) => v === 'true' || v === '1'),
    until: until ? Math.min(...until) : undefined,
    labels,
  });
  json(ctx, 200, result);
}

// ---- search ----

async function searchImages(ctx: Ctx): Promise<void> {
  const q = ctx.query;
  const term = q.get('term') ?? '';
  const rawLimit = q.get('limit');
  const limit = rawLimit === null || rawLimit === '' || rawLimit === '0' ? 25 : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100)
    throw invalid(`limit ${rawLimit} is outside the range of [1, 100]`);
  const filters = parseFilters(q.get('filters'));
  checkFilterKeys(filters, ['stars', 'is-official', 'is-automated']);
  const bool = (key: string): boolean | undefined => {
    const v = filters.get(key)?.[0];
    if (v === undefined) return undefined;
    if (!['true', 'false', '1', '0'].includes(v)) throw invalid(`invalid filter '${key}=${v}'`);
    return v === 'true' || v === '1';
  };
  const starsRaw = filters.get('stars')?.[0];
  if (starsRaw !== undefined && !/^\d+$/.test(starsRaw)) throw invalid(`invalid filter 'stars=${starsRaw}'`);
  const results = await ctx.services.distribution.search(
    term,
    limit,
    {
      stars: starsRaw === undefined ? undefined : Number(starsRaw),
      isOfficial: bool('is-official'),
      isAutomated: bool('is-automated'),
    },
    registryAuth(ctx.req),
  );
  json(ctx, 200, results);
}

export function registerImageRoutes(router: Router): void {
  router.get('/images/json', listImages);
  router.get('/images/search', searchImages);
  router.post('/images/create', createImage);
  router.post('/images/load', loadImages);
  router.get('/images/get', (ctx) => saveImages(ctx, ctx.query.getAll('names')));
  router.post('/images/prune', prune);
  router.get('/images/{name:.*}/json', async (ctx) =>
    json(ctx, 200, inspectShape(ctx, await ctx.services.images.resolve(ctx.params.name))),
  );
  router.get('/images/{name:.*}/history', async (ctx) =>
    json(ctx, 200, await ctx.services.images.history(ctx.params.name)),
  );
  router.get('/images/{name:.*}/get', (ctx) => saveImages(ctx, [ctx.params.name]));
  router.post('/images/{name:.*}/push', async (ctx) => {
    const named = parseReference(ctx.params.name);
    const ref: Reference = { repo: named.repo, tag: ctx.query.get('tag') || named.tag };
    // Berth's extension (`berth push --compression zstd`): layer compression, gzip by default.
    const compression = ctx.query.get('compression') || 'gzip';
    if (compression !== 'gzip' && compression !== 'zstd')
      throw invalid(`invalid compression: ${compression} (gzip or zstd)`);
    const out = startJsonMessages(resOf(ctx));
    try {
      await ctx.services.distribution.push(ref, registryAuth(ctx.req), out, { compression });
    } catch (err) {
      out.error((err as Error).message);
    }
    out.end();
  });
  router.post('/images/{name:.*}/tag', async (ctx) => {
    const repo = ctx.query.get('repo');
    if (!repo) throw invalid('repository name must have at least one component');
    const tag = ctx.query.get('tag');
    await ctx.services.images.tag(ctx.params.name, tag ? `${repo}:${tag}` : repo);
    resOf(ctx).writeHead(201).end();
  });
  router.delete('/images/{name:.*}', async (ctx) => {
    const items = await ctx.services.images.remove(ctx.params.name, {
      force: qBool(ctx.query, 'force'),
      noprune: qBool(ctx.query, 'noprune'),
    });
    json(ctx, 200, items);
  });
  router.post('/commit', commit);
  router.get('/containers/{id}/changes', async (ctx) => {
    const c = ctx.services.containers.get(ctx.params.id);
    json(ctx, 200, await ctx.services.rootfs.changes(c.Id));
  });
  router.get('/containers/{id}/export', async (ctx) => {
    const c = ctx.services.containers.get(ctx.params.id);
    const tar = await ctx.services.rootfs.exportTar(c.Id);
    const res = resOf(ctx);
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    tar.on('error', () => res.destroy());
    res.on('close', () => tar.destroy());
    tar.pipe(res);
  });
}
