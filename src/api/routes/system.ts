/** `/_ping`, `/version`, `/info`, `/events`: what every client calls first. */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import type { EngineEvent } from '../../model/events.js';
import { LOG_DRIVERS } from '../../containers/logging/index.js';
import { invalid } from '../../util/errors.js';
import { goArch } from '../../util/platform.js';
import type { Ctx } from '../context.js';
import { json, parseFilters, resOf } from '../http.js';
import type { Router } from '../router.js';
import { API_VERSION, ENGINE_VERSION, MIN_API_VERSION } from '../version.js';

const GIT_COMMIT = 'berth';
/** As dockerd: the drivers that record output (`none` is accepted but not listed). */
const LOG_PLUGINS = LOG_DRIVERS.filter((d) => d !== 'none');

function ping(ctx: Ctx): void {
  const res = resOf(ctx);
  res.writeHead(200, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    'Builder-Version': '1',
    Swarm: 'inactive',
    ...(ctx.req.method === 'HEAD' ? { 'Content-Length': '0' } : {}),
  });
  res.end(ctx.req.method === 'HEAD' ? undefined : 'OK');
}

function versionInfo() {
  const kernel = os.release();
  const details = { ApiVersion: API_VERSION, Arch: goArch(), BuildTime: '', Experimental: 'false', GitCommit: GIT_COMMIT, GoVersion: `node${process.versions.node}`, KernelVersion: kernel, MinAPIVersion: MIN_API_VERSION, Os: 'linux' };
  return {
    Platform: { Name: 'Berth Engine' },
    Components: [{ Name: 'Engine', Version: ENGINE_VERSION, Details: details }],
    Version: ENGINE_VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: GIT_COMMIT,
    GoVersion: `node${process.versions.node}`,
    Os: 'linux',
    Arch: goArch(),
    KernelVersion: kernel,
    BuildTime: '',
  };
}

function osName(): string {
  try {
    const m = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'));
    return m ? m[1] : 'Linux';
  } catch {
    return 'Linux';
  }
}

async function info(ctx: Ctx): Promise<void> {
  const s = ctx.services;
  const all = s.containers.list();
  const count = (st: string) => all.filter((c) => c.State.Status === st).length;
  const cluster = s.cluster?.status();
  json(ctx, 200, {
    ID: s.id,
    Containers: all.length,
    ContainersRunning: count('running'),
    ContainersPaused: count('paused'),
    ContainersStopped: all.length - count('running') - count('paused'),
    Images: s.images.count(),
    Driver: 'overlay2',
    DriverStatus: [['Backing Filesystem', 'extfs'], ['Supports d_type', 'true']],
    Plugins: { Volume: await ctx.services.volumes.driverNames(), Network: ['bridge', 'host', 'macvlan', 'null', ...(cluster ? ['overlay'] : [])], Authorization: null, Log: LOG_PLUGINS },
    MemoryLimit: true,
    SwapLimit: false,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: true,
    IPv4Forwarding: true,
    Debug: s.config.logLevel === 'debug',
    NFd: 0,
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: ctx.services.containers.logs.defaults.Type,
    CgroupDriver: 'cgroupfs',
    CgroupVersion: '1',
    NEventsListener: s.events.listenerCount('event'),
    KernelVersion: os.release(),
    OperatingSystem: osName(),
    OSVersion: '',
    OSType: 'linux',
    Architecture: os.machine(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: s.distribution.registryInfo(),
    NCPU: os.cpus().length,
    MemTotal: os.totalmem(),
    DockerRootDir: s.config.dataRoot,
    HttpProxy: '',
    HttpsProxy: '',
    NoProxy: '',
    Name: os.hostname(),
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: ENGINE_VERSION,
    Runtimes: Object.fromEntries(Object.entries(s.config.runtimes).map(([k, v]) => [k, { path: v.path }])),
    DefaultRuntime: s.config.defaultRuntime,
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: s.config.liveRestore,
    // dockerd's classic multi-host fields, and Berth's view of the cluster (state, live hosts).
    ClusterStore: cluster?.store ?? '',
    ClusterAdvertise: cluster ? `${cluster.advertiseAddr || cluster.advertise}` : '',
    ...(cluster
      ? {
          Cluster: {
            State: cluster.state,
            Error: cluster.error,
            Hosts: cluster.hosts.map((h) => ({ Addr: h.addr, Name: h.name, EngineID: h.engineId, Since: h.since })),
          },
        }
      : {}),
    Isolation: '',
    InitBinary: 'tini-static',
    SecurityOptions: ['name=seccomp,profile=builtin'],
    Warnings: cluster && cluster.state === 'error' ? [`WARNING: cluster store ${cluster.store}: ${cluster.error}`] : [],
  });
}

function matchesEvent(ev: EngineEvent, filters: Map<string, string[]>): boolean {
  for (const [key, values] of filters) {
    const attrs = ev.Actor.Attributes;
    const ok = values.some((v) => {
      switch (key) {
        case 'type':
          return ev.Type === v;
        case 'event':
          return ev.Action === v || ev.Action.startsWith(`${v}:`);
        case 'container':
          return ev.Type === 'container' && (ev.Actor.ID.startsWith(v) || attrs.name === v);
        case 'image':
          return attrs.image === v || ev.Actor.ID === v;
        case 'network':
          return ev.Type === 'network' && (ev.Actor.ID.startsWith(v) || attrs.name === v);
        case 'volume':
          return ev.Type === 'volume' && ev.Actor.ID === v;
        case 'label': {
          const [k, val] = v.split('=', 2);
          return val === undefined ? k in attrs : attrs[k] === val;
        }
        case 'daemon':
          return ev.Type === 'daemon';
        default:
          return false;
      }
    });
    if (!ok) return false;
  }
  return true;
}

function parseTime(v: string | null): number | undefined {
  if (!v) return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return n;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalid(`invalid time: ${v}`);
  return t / 1000;
}

function events(ctx: Ctx): Promise<void> {
  const res = resOf(ctx);
  const filters = parseFilters(ctx.query.get('filters'));
  const since = parseTime(ctx.query.get('since'));
  const until = parseTime(ctx.query.get('until'));
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  const legacy = (ev: EngineEvent) =>
    ev.Type === 'container' || ev.Type === 'image'
      ? { status: ev.Action, id: ev.Actor.ID, from: ev.Actor.Attributes.image, ...ev }
      : ev;
  const write = (ev: EngineEvent) => {
    if (matchesEvent(ev, filters)) res.write(JSON.stringify(legacy(ev)) + '\n');
  };
  if (since !== undefined) {
    for (const ev of ctx.services.events.history()) {
      if (ev.timeNano / 1e9 >= since && (until === undefined || ev.timeNano / 1e9 <= until)) write(ev);
    }
  }
  return new Promise((resolve) => {
    const bus = ctx.services.events;
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      bus.off('event', write);
      if (timer) clearTimeout(timer);
      res.end();
      resolve();
    };
    if (until !== undefined) {
      const ms = until * 1000 - Date.now();
      if (ms <= 0) return done();
      timer = setTimeout(done, ms);
    }
    bus.on('event', write);
    ctx.req.socket.on('close', done);
  });
}

export function registerSystemRoutes(router: Router): void {
  router.get('/_ping', ping);
  router.head('/_ping', ping);
  router.get('/version', (ctx) => json(ctx, 200, versionInfo()));
  router.get('/info', info);
  router.get('/events', events);
}
