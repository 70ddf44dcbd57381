/** `/containers/*`: the container life cycle and queries, as the docker CLI 28 speaks them. */
import { AttachSession } from '../../containers/attach.js';
import type { CreateRequest } from '../../containers/create.js';
import { LogOutput, type LogSink, parseLogTime } from '../../containers/logging/index.js';
import type { WaitCondition } from '../../containers/service.js';
import { statusText } from '../../containers/status.js';
import type { ContainerRecord } from '../../model/container.js';
import { conflict, invalid, notImplemented } from '../../util/errors.js';
import type { Ctx } from '../context.js';
import { checkFilterKeys, json, noContent, parseFilters, qBool, qInt, resOf } from '../http.js';
import type { Filters } from '../../model/filters.js';
import type { Router } from '../router.js';
import { hijack } from '../streams.js';
import { readTyped } from '../validate/body.js';
import { createRequest, updateConfig } from '../validate/engine-types.js';
import { listable, listedContainer } from '../validate/listable.js';
import { qTermSize, qTimeoutSeconds } from '../validate/query.js';

/** Inspect's shape: the record minus Berth's private fields, with `Config.Image` as the user wrote it. */
export function inspectView(c: ContainerRecord, sizes?: { rw: number; rootFs: number }) {
  const { ImageName, ManuallyStopped: _m, RemoveVolumes: _r, NetworkingConfig: _n, PrimaryNetworkLeft: _p, ...rest } = c;
  return {
    ...rest,
    Config: { ...c.Config, Image: ImageName },
    State: { ...c.State, Health: c.State.Health },
    GraphDriver: { Name: 'overlay2', Data: null },
    ...(sizes ? { SizeRw: sizes.rw, SizeRootFs: sizes.rootFs } : {}),
  };
}

function portList(c: ContainerRecord) {
  const out: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = [];
  const ports = c.NetworkSettings.Ports ?? {};
  for (const [key, bindings] of Object.entries(ports)) {
    const [p, proto] = key.split('/');
    if (!bindings || bindings.length === 0) out.push({ PrivatePort: Number(p), Type: proto ?? 'tcp' });
    else for (const b of bindings) out.push({ IP: b.HostIp || '0.0.0.0', PrivatePort: Number(p), PublicPort: Number(b.HostPort), Type: proto ?? 'tcp' });
  }
  if (!c.State.Running) return [];
  return out;
}

function commandLine(c: ContainerRecord): string {
  return [c.Path, ...c.Args].map((a) => (/\s/.test(a) || a === '' ? JSON.stringify(a) : a)).join(' ');
}

function listView(c: ContainerRecord) {
  return {
    Id: c.Id,
    Names: [c.Name],
    Image: c.ImageName,
    ImageID: c.Image,
    Command: commandLine(c),
    Created: Math.floor(Date.parse(c.Created) / 1000),
    Ports: portList(c),
    Labels: c.Config.Labels ?? {},
    State: c.State.Status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.HostConfig.NetworkMode ?? 'bridge' },
    NetworkSettings: { Networks: c.NetworkSettings.Networks ?? {} },
    Mounts: c.Mounts.map((m) => ({ ...m })),
  };
}

function labelMatch(labels: Record<string, string>, expr: string): boolean {
  const i = expr.indexOf('=');
  if (i < 0) return expr in labels;
  const k = expr.slice(0, i);
  const neg = k.endsWith('!');
  const key = neg ? k.slice(0, -1) : k;
  return neg ? labels[key] !== expr.slice(i + 1) : labels[key] === expr.slice(i + 1);
}

const CONTAINER_FILTERS = ['status', 'name', 'label', 'ancestor', 'id', 'exited', 'before', 'since', 'network', 'volume', 'health', 'is-task', 'expose', 'publish'];

function matches(ctx: Ctx, c: ContainerRecord, f: Filters): boolean {
  const any = (k: string, pred: (v: string) => boolean) => !f.has(k) || f.get(k)!.some(pred);
  const every = (k: string, pred: (v: string) => boolean) => !f.has(k) || f.get(k)!.every(pred);
  if (!any('status', (v) => {
    if (!['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'].includes(v)) throw invalid(`invalid filter 'status=${v}'`);
    return c.State.Status === v;
  })) return false;
  if (!any('name', (v) => new RegExp(v).test(c.Name.slice(1)) || new RegExp(v).test(c.Name))) return false;
  if (!any('id', (v) => c.Id.startsWith(v))) return false;
  if (!every('label', (v) => labelMatch(c.Config.Labels ?? {}, v))) return false;
  if (!any('exited', (v) => c.State.Status === 'exited' && c.State.ExitCode === Number(v))) return false;
  if (!any('ancestor', (v) => {
    if (c.ImageName === v || c.Image === v || c.Image.replace('sha256:', '').startsWith(v)) return true;
    const base = v.includes(':') ? v : `${v}:latest`;
    return c.ImageName === base || (!c.ImageName.includes(':') && `${c.ImageName}:latest` === base);
  })) return false;
  if (!any('network', (v) => Object.keys(c.NetworkSettings.Networks ?? {}).includes(v) || c.HostConfig.NetworkMode === v)) return false;
  if (!any('volume', (v) => c.Mounts.some((m) => m.Name === v || m.Destination === v))) return false;
  if (!any('health', (v) => (c.State.Health?.Status ?? 'none') === v)) return false;
  if (!any('is-task', (v) => v === 'false')) return false;
  for (const key of ['before', 'since'] as const) {
    if (!f.has(key)) continue;
    const ref = ctx.services.containers.get(f.get(key)![0]);
    const t = Date.parse(ref.Created);
    const mine = Date.parse(c.Created);
    if (key === 'before' ? mine >= t : mine <= t) return false;
  }
  return true;
}

async function list(ctx: Ctx): Promise<void> {
  const all = qBool(ctx.query, 'all');
  const limit = qInt(ctx.query, 'limit');
  const filters = parseFilters(ctx.query.get('filters'));
  checkFilterKeys(filters, CONTAINER_FILTERS);
  let items = listable('container', ctx.services.containers.list(), listedContainer, (c) => c?.Id)
    .filter((c) => all || (limit !== undefined && limit > 0) || c.State.Running || c.State.Status === 'restarting' || filters.has('status') || filters.has('exited'))
    .filter((c) => matches(ctx, c, filters))
    .sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created));
  if (limit !== undefined && limit > 0) items = items.slice(0, limit);
  const withSize = qBool(ctx.query, 'size');
  json(
    ctx,
    200,
    await Promise.all(
      items.map(async (c) => {
        if (!withSize) return listView(c);
        const sizes = await sizesOf(ctx, c);
        return { ...listView(c), SizeRw: sizes.rw, SizeRootFs: sizes.rootFs };
      }),
    ),
  );
}

/** `SizeRw`: bytes in the container's own layer; `SizeRootFs`: that plus its image. */
async function sizesOf(ctx: Ctx, c: ContainerRecord): Promise<{ rw: number; rootFs: number }> {
  const rw = await ctx.services.rootfs.sizeRw(c.Id).catch(() => 0);
  const image = await ctx.services.images.resolve(c.Image).catch(() => undefined);
  return { rw, rootFs: rw + (image?.size ?? 0) };
}

async function create(ctx: Ctx): Promise<void> {
  const body = await readTyped<CreateRequest>(ctx, createRequest);
  const name = ctx.query.get('name') ?? undefined;
  json(ctx, 201, await ctx.services.containers.create(body, name || undefined));
}

async function inspect(ctx: Ctx): Promise<void> {
  const c = ctx.services.containers.get(ctx.params.id);
  json(ctx, 200, inspectView(c, qBool(ctx.query, 'size') ? await sizesOf(ctx, c) : undefined));
}

async function start(ctx: Ctx): Promise<void> {
  await ctx.services.containers.start(ctx.params.id);
  noContent(ctx);
}

function stopOpts(ctx: Ctx) {
  const t = qTimeoutSeconds(ctx.query);
  return { signal: ctx.query.get('signal') ?? undefined, timeout: t };
}

async function stop(ctx: Ctx): Promise<void> {
  await ctx.services.containers.stop(ctx.params.id, stopOpts(ctx));
  noContent(ctx);
}

async function restart(ctx: Ctx): Promise<void> {
  await ctx.services.containers.restart(ctx.params.id, stopOpts(ctx));
  noContent(ctx);
}

async function kill(ctx: Ctx): Promise<void> {
  await ctx.services.containers.kill(ctx.params.id, ctx.query.get('signal') || 'SIGKILL');
  noContent(ctx);
}

async function remove(ctx: Ctx): Promise<void> {
  await ctx.services.containers.remove(ctx.params.id, { force: qBool(ctx.query, 'force'), volumes: qBool(ctx.query, 'v') });
  noContent(ctx);
}

async function wait(ctx: Ctx): Promise<void> {
  const condition = (ctx.query.get('condition') || 'not-running') as WaitCondition;
  if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw invalid(`invalid condition: "${condition}"`);
  const res = resOf(ctx);
  const waiting = ctx.services.containers.wait(ctx.params.id, condition);
  // The CLI calls start only after these headers arrive: flush them now.
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  const onClose = () => waiting.cancel();
  ctx.req.socket.once('close', onClose);
  const result = await waiting;
  ctx.req.socket.off('close', onClose);
  res.end(JSON.stringify(result) + '\n');
}

async function attach(ctx: Ctx): Promise<void> {
  const c = ctx.services.containers.get(ctx.params.id);
  const q = ctx.query;
  const stream = qBool(q, 'stream');
  const logs = qBool(q, 'logs');
  if (!stream && !logs) throw invalid('Bad parameters: you must choose at least one stream');
  if (c.State.Paused) throw conflict(`You cannot attach to a paused container, unpause it first`);
  const { socket, head } = hijack(ctx, !c.Config.Tty);
  const opts = { tty: c.Config.Tty, stdin: qBool(q, 'stdin') && c.Config.OpenStdin, stdout: qBool(q, 'stdout'), stderr: qBool(q, 'stderr') };
  if (logs) {
    const abort = new AbortController();
    socket.once('close', () => abort.abort());
    const out = new LogOutput(sinkOf(socket), c.Config.Tty, false);
    await ctx.services.containers.logs.read(c, { stdout: opts.stdout, stderr: opts.stderr }, out, abort.signal).catch(() => {});
  }
  if (!stream) {
    socket.end();
    return;
  }
  const session = new AttachSession(socket, head, opts);
  await ctx.services.containers.attach(c, session);
  // A stopped container that is not about to start: nothing will come; Docker returns at once.
  if (!c.State.Running && c.State.Status !== 'created' && c.State.Status !== 'restarting' && !c.HostConfig.RestartPolicy) session.finish();
}

async function logs(ctx: Ctx): Promise<void> {
  const c = ctx.services.containers.get(ctx.params.id);
  const q = ctx.query;
  const stdout = qBool(q, 'stdout');
  const stderr = qBool(q, 'stderr');
  if (!stdout && !stderr) throw invalid('Bad parameters: you must choose at least one stream');
  const tailRaw = q.get('tail');
  // As Docker: anything but a whole number ≥ 0 ("all", "-1", "") means every line.
  const tailNum = tailRaw === null ? Number.NaN : Number(tailRaw);
  const tail = tailRaw !== '' && Number.isInteger(tailNum) && tailNum >= 0 ? tailNum : undefined;
  const since = parseLogTime('since', q.get('since'));
  const until = parseLogTime('until', q.get('until'));
  const timestamps = qBool(q, 'timestamps');
  const svc = ctx.services.containers;
  const follow = qBool(q, 'follow') && (c.State.Running || c.State.Status === 'restarting');
  const stopped = svc.whenStopped(c);
  // Refused before the headers go out (a `none` driver): a plain API error.
  if (!c.LogPath || c.HostConfig.LogConfig?.Type === 'none') throw notImplemented('configured logging driver does not support reading');
  const res = resOf(ctx);
  res.writeHead(200, { 'Content-Type': c.Config.Tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
  res.flushHeaders();
  const abort = new AbortController();
  ctx.req.socket.once('close', () => abort.abort());
  const out = new LogOutput(sinkOf(res), c.Config.Tty, timestamps);
  await svc.logs.read(c, { stdout, stderr, since, until, tail }, out, abort.signal, follow ? { stopped } : undefined);
  res.end();
}

async function rename(ctx: Ctx): Promise<void> {
  await ctx.services.containers.rename(ctx.params.id, ctx.query.get('name') ?? '');
  noContent(ctx);
}

async function resize(ctx: Ctx): Promise<void> {
  const h = qTermSize(ctx.query, 'h');
  const w = qTermSize(ctx.query, 'w');
  await ctx.services.containers.resize(ctx.params.id, h, w);
  json(ctx, 200, {});
}

async function pause(ctx: Ctx): Promise<void> {
  await ctx.services.containers.pause(ctx.params.id);
  noContent(ctx);
}

async function unpause(ctx: Ctx): Promise<void> {
  await ctx.services.containers.unpause(ctx.params.id);
  noContent(ctx);
}

async function top(ctx: Ctx): Promise<void> {
  const psArgs = (ctx.query.get('ps_args') || '-ef').split(/\s+/).filter(Boolean);
  json(ctx, 200, await ctx.services.containers.top(ctx.params.id, psArgs));
}

async function stats(ctx: Ctx): Promise<void> {
  const c = ctx.services.containers.get(ctx.params.id);
  const stream = qBool(ctx.query, 'stream', true) && !qBool(ctx.query, 'one-shot');
  const res = resOf(ctx);
  let pre = { cpu: 0, system: 0, read: '0001-01-01T00:00:00Z' };
  if (!stream) {
    const first = await ctx.services.containers.stats(c.Id, pre);
    json(ctx, 200, first);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json' });
  let open = true;
  ctx.req.socket.once('close', () => (open = false));
  while (open) {
    const s = await ctx.services.containers.stats(c.Id, pre);
    res.write(JSON.stringify(s) + '\n');
    pre = { cpu: s.cpu_stats.cpu_usage.total_usage, system: s.cpu_stats.system_cpu_usage, read: s.read };
    await new Promise((r) => setTimeout(r, 1000));
    if (!ctx.services.containers.list().includes(c)) break;
  }
  res.end();
}

async function update(ctx: Ctx): Promise<void> {
  const body = await readTyped<Record<string, unknown>>(ctx, updateConfig, {});
  json(ctx, 200, await ctx.services.containers.update(ctx.params.id, body));
}

async function prune(ctx: Ctx): Promise<void> {
  const filters = parseFilters(ctx.query.get('filters'));
  checkFilterKeys(filters, ['until', 'label', 'label!']);
  const svc = ctx.services.containers;
  const deleted: string[] = [];
  for (const c of svc.list()) {
    if (c.State.Running || c.State.Status === 'restarting' || c.State.Paused) continue;
    if (filters.has('label') && !filters.get('label')!.every((l) => labelMatch(c.Config.Labels ?? {}, l))) continue;
    if (filters.has('label!') && filters.get('label!')!.some((l) => labelMatch(c.Config.Labels ?? {}, l))) continue;
    if (filters.has('until')) {
      const u = filters.get('until')![0];
      const t = /^\d+(\.\d+)?$/.test(u) ? Number(u) * 1000 : Date.parse(u);
      if (Date.parse(c.Created) >= t) continue;
    }
    await svc.remove(c.Id, { force: false, volumes: false });
    deleted.push(c.Id);
  }
  json(ctx, 200, { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: 0 });
}

export function registerContainerRoutes(router: Router): void {
  router.get('/containers/json', list);
  router.post('/containers/create', create);
  router.post('/containers/prune', prune);
  router.get('/containers/{id}/json', inspect);
  router.post('/containers/{id}/start', start);
  router.post('/containers/{id}/stop', stop);
  router.post('/containers/{id}/restart', restart);
  router.post('/containers/{id}/kill', kill);
  router.post('/containers/{id}/wait', wait);
  router.post('/containers/{id}/attach', attach);
  router.get('/containers/{id}/logs', logs);
  router.post('/containers/{id}/rename', rename);
  router.post('/containers/{id}/resize', resize);
  router.post('/containers/{id}/pause', pause);
  router.post('/containers/{id}/unpause', unpause);
  router.post('/containers/{id}/update', update);
  router.get('/containers/{id}/top', top);
  router.get('/containers/{id}/stats', stats);
  router.delete('/containers/{id}', remove);
}

/** A response or socket as the log reader's output: write, and wait for drain (or for the client to go). */
function sinkOf(w: NodeJS.WritableStream & { once(ev: 'close', fn: () => void): unknown; destroyed?: boolean }): LogSink {
  return {
    write: (b, done) => w.write(b, () => done()),
    drain: () =>
      new Promise<void>((resolve) => {
        if (w.destroyed) return resolve();
        const done = () => {
          w.removeListener('drain', done);
          w.removeListener('close', done);
          resolve();
        };
        w.once('drain', done);
        w.once('close', done);
      }),
  };
}
