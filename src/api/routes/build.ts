/**
 * `POST /build` (the classic builder's protocol, as docker CLI 28 speaks it with DOCKER_BUILDKIT=0
 * or without buildx) and `POST /build/prune`. The JSON stream starts with the first line the
 * builder writes: errors before it (a bad tag, a Dockerfile parse error) get their HTTP status;
 * errors after it become `errorDetail` records, with the exit code of a failing RUN.
 */
import type { IncomingMessage } from 'node:http';
import type { BuildOptions, BuildPruneOptions, RegistryConfig } from '../../build/index.js';
import { StepFailed } from '../../build/index.js';
import type { HostConfig } from '../../model/container.js';
import type { Filters } from '../../model/filters.js';
import { parseGoDuration } from '../../util/duration.js';
import { invalid } from '../../util/errors.js';
import type { Ctx } from '../context.js';
import { checkFilterKeys, json, parseFilters, qBool, qInt, resOf } from '../http.js';
import type { Router } from '../router.js';
import { startJsonMessages } from '../streams.js';
import type { JsonMessageStream } from '../../util/json-message.js';

function jsonMap<T>(raw: string | null, what: string): Record<string, T> {
  if (!raw) return {};
  try {
    const v = JSON.parse(raw) as unknown;
    if (v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, T>;
  } catch (err) {
    throw invalid(`invalid ${what}: ${(err as Error).message}`);
  }
}

/** `cachefrom`: a JSON list of image references. */
function jsonList(raw: string | null): string[] {
  if (!raw) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    if (v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error('not a list of strings');
    return (v as string[]).filter(Boolean);
  } catch (err) {
    throw invalid(`invalid cache-from: ${(err as Error).message}`);
  }
}

/** Docker builds for the daemon's platform; anything else is refused rather than built wrongly. */
function checkPlatform(p: string | null): void {
  if (!p) return;
  for (const one of p.split(',')) {
    const v = one.trim().toLowerCase();
    if (!['linux', 'linux/amd64', 'amd64', 'linux/x86_64', 'linux/amd64/v1'].includes(v))
      throw invalid(`"${one}": this daemon builds images for linux/amd64 only`);
  }
}

/** Reads what is left of a refused upload, so the client sees the answer instead of a reset. */
async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return;
  req.resume();
  await new Promise<void>((resolve) => {
    req.once('end', resolve);
    req.once('close', resolve);
    req.once('error', () => resolve());
  });
}

/**
 * `X-Berth-Build-Secrets`: base64 of a JSON map id → base64 content, as `berth build --secret`
 * sends it (a Berth extension: the classic protocol has no way to pass secrets).
 */
function secretsOf(req: IncomingMessage): Record<string, Buffer> {
  const raw = req.headers['x-berth-build-secrets'];
  if (typeof raw !== 'string' || raw === '') return {};
  try {
    const map = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as Record<string, string>;
    return Object.fromEntries(Object.entries(map).map(([id, v]) => [id, Buffer.from(String(v), 'base64')]));
  } catch {
    throw invalid('invalid X-Berth-Build-Secrets header');
  }
}

/** `X-Registry-Config`: base64 (standard or URL-safe) JSON map registry → credentials. */
function registryConfigOf(req: IncomingMessage): RegistryConfig {
  const raw = req.headers['x-registry-config'];
  if (typeof raw !== 'string' || raw === '') return {};
  try {
    const v = JSON.parse(
      Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'),
    ) as unknown;
    return typeof v === 'object' && v !== null ? (v as RegistryConfig) : {};
  } catch {
    return {};
  }
}

export function buildOptions(q: URLSearchParams): BuildOptions {
  if (q.get('remote'))
    throw invalid('remote build contexts (git, URL) are not supported; send the context as a tar');
  checkPlatform(q.get('platform'));
  const network = q.get('networkmode') || 'default';
  const hostConfig: HostConfig = { NetworkMode: network === 'default' ? 'bridge' : network };
  const extraHosts = q
    .getAll('extrahosts')
    .flatMap((v) => v.split(','))
    .filter(Boolean);
  if (extraHosts.length) hostConfig.ExtraHosts = extraHosts;
  for (const [param, key] of [
    ['memory', 'Memory'],
    ['memswap', 'MemorySwap'],
    ['cpushares', 'CpuShares'],
    ['cpuperiod', 'CpuPeriod'],
    ['cpuquota', 'CpuQuota'],
    ['shmsize', 'ShmSize'],
  ] as const) {
    const v = qInt(q, param);
    if (v) hostConfig[key] = v;
  }
  const cpuset = q.get('cpusetcpus');
  if (cpuset) hostConfig.CpusetCpus = cpuset;
  return {
    tags: q.getAll('t').filter(Boolean),
    dockerfile: q.get('dockerfile') || undefined,
    buildArgs: jsonMap<string | null>(q.get('buildargs'), 'build args'),
    labels: jsonMap<string>(q.get('labels'), 'labels'),
    target: q.get('target') || undefined,
    noCache: qBool(q, 'nocache'),
    cacheFrom: jsonList(q.get('cachefrom')),
    pull: qBool(q, 'pull'),
    quiet: qBool(q, 'q'),
    hostConfig,
  };
}

async function build(ctx: Ctx): Promise<void> {
  const res = resOf(ctx);
  let options: BuildOptions;
  try {
    options = buildOptions(ctx.query);
    options.secrets = secretsOf(ctx.req);
    options.registryConfig = registryConfigOf(ctx.req);
  } catch (err) {
    await drain(ctx.req);
    throw err;
  }
  // A client that goes away cancels the build: the running step's container is killed and removed.
  const cancel = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) cancel.abort();
  });
  let stream: JsonMessageStream | undefined;
  const started = () => (stream ??= startJsonMessages(res));
  try {
    await ctx.services.builds.build(
      {
        options,
        context: ctx.req,
        contentType: ctx.req.headers['content-type'],
        signal: cancel.signal,
        buildId: ctx.query.get('buildid') || undefined,
      },
      {
        stream: (text) => started().stream(text),
        aux: (value) => started().send({ aux: value }),
        send: (msg) => started().send(msg),
      },
    );
  } catch (err) {
    if (!stream) {
      await drain(ctx.req);
      throw err;
    }
    stream.error((err as Error).message, err instanceof StepFailed ? err.code : undefined);
  }
  started().end();
}

const PRUNE_FILTERS = ['until', 'unused-for', 'label', 'label!', 'id', 'parent', 'type', 'description', 'inuse', 'shared', 'private'];

/** A duration filter (`until`, `unused-for`) in ms: Go durations only, as Docker's build prune takes them. */
function durationFilter(filters: Filters, key: string): number | undefined {
  const v = filters.get(key);
  if (!v?.length) return undefined;
  const ms = parseGoDuration(v[0]);
  if (ms === undefined)
    throw invalid(`"${key}" filter expects a duration (e.g., '24h'): time: invalid duration ${JSON.stringify(v[0])}`);
  return ms;
}

/** `POST /build/prune?all=&filters=&keep-storage=` (also `reserved-space`, its newer name). */
export function pruneOptions(q: URLSearchParams): BuildPruneOptions {
  const filters = parseFilters(q.get('filters'));
  checkFilterKeys(filters, PRUNE_FILTERS);
  for (const [k, v] of filters)
    if (v.length > 1 && !k.startsWith('label')) throw invalid('filters expect only one value');
  const until = durationFilter(filters, 'until');
  const unusedFor = durationFilter(filters, 'unused-for');
  if (until && unusedFor) throw invalid('conflicting filters "until" and "unused-for"');
  const keepBytes = qInt(q, 'keep-storage') || qInt(q, 'reserved-space') || undefined;
  return { all: qBool(q, 'all'), keepDurationMs: until || unusedFor || undefined, keepBytes, filters };
}

async function prune(ctx: Ctx): Promise<void> {
  json(ctx, 200, await ctx.services.builds.prune(pruneOptions(ctx.query)));
}

/**
 * `POST /build/cancel?id=…`: stops the build whose client passed `buildid=…` to `/build`. As with
 * Docker, an ID that names no running build is not an error (the build may just have ended).
 */
async function cancelBuild(ctx: Ctx): Promise<void> {
  const id = ctx.query.get('id');
  if (!id) throw invalid('build ID not provided');
  ctx.services.builds.cancel(id);
  resOf(ctx).writeHead(200).end();
}

export function registerBuildRoutes(router: Router): void {
  router.post('/build', build);
  router.post('/build/cancel', cancelBuild);
  router.post('/build/prune', prune);
}
