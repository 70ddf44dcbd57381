/**
 * The steps that make a container's OCI spec, each small and testable alone (containerd's
 * `oci.With…` style). `buildSpec(rootfs, [withX(…), withY(…)])` applies them in order.
 */
import { effectiveCaps } from './capabilities.js';
import { defaultSeccomp, seccompFromProfile } from './seccomp.js';
import { BPF_ANNOTATION } from './seccomp-bpf.js';
import type { OciMount, OciSeccomp, OciSpec, SpecOpt } from './types.js';

const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Docker's default mounts for a container (moby `oci/defaults.go`). */
function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['ro', 'nosuid', 'noexec', 'nodev'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864'],
    },
  ];
}

export function baseSpec(rootfs: string): OciSpec {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [],
      env: [],
      cwd: '/',
      capabilities: { bounding: [], effective: [], permitted: [] },
      rlimits: [],
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: false },
    hostname: '',
    mounts: defaultMounts(),
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }],
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      cgroupsPath: '',
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
}

export function buildSpec(rootfs: string, opts: SpecOpt[]): OciSpec {
  const spec = baseSpec(rootfs);
  for (const opt of opts) opt(spec);
  return spec;
}

export const withProcessArgs =
  (args: string[]): SpecOpt =>
  (s) => {
    s.process.args = args;
  };

export const withEnv =
  (env: string[]): SpecOpt =>
  (s) => {
    s.process.env = env;
  };

export const withCwd =
  (cwd: string): SpecOpt =>
  (s) => {
    s.process.cwd = cwd || '/';
  };

export const withUser =
  (uid: number, gid: number, additionalGids: number[] = []): SpecOpt =>
  (s) => {
    s.process.user = { uid, gid, ...(additionalGids.length ? { additionalGids } : {}) };
  };

export const withTerminal =
  (tty: boolean, size?: [number, number]): SpecOpt =>
  (s) => {
    s.process.terminal = tty;
    if (tty && size && size[0] > 0 && size[1] > 0)
      s.process.consoleSize = { height: size[0], width: size[1] };
  };

export const withHostname =
  (hostname: string): SpecOpt =>
  (s) => {
    s.hostname = hostname;
  };

/** Network namespace: join `path`, or none at all for the host's network, or a new private one. */
export const withNetworkNamespace =
  (opts: { path?: string; host: boolean }): SpecOpt =>
  (s) => {
    s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'network');
    if (opts.host) return;
    s.linux.namespaces.push(opts.path ? { type: 'network', path: opts.path } : { type: 'network' });
  };

export const withCapabilities =
  (add: string[] = [], drop: string[] = [], privileged = false): SpecOpt =>
  (s) => {
    const caps = effectiveCaps(add, drop, privileged);
    s.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
  };

/** Default seccomp profile unless `--security-opt seccomp=unconfined` or privileged. */
export const withSeccomp =
  (opt: {
    unconfined: boolean;
    file?: string;
    precompile?: (section: OciSeccomp) => string | undefined;
  }): SpecOpt =>
  (s) => {
    if (opt.unconfined) {
      delete s.linux.seccomp;
      return;
    }
    const caps = s.process.capabilities.bounding;
    s.linux.seccomp = opt.file ? seccompFromProfile(opt.file, caps) : defaultSeccomp(caps);
    // crun loads precompiled BPF from this annotation and skips compiling; runc reads the section.
    const bpf = opt.precompile?.(s.linux.seccomp);
    if (bpf) s.annotations = { ...(s.annotations ?? {}), [BPF_ANNOTATION]: bpf };
  };

export const withNoNewPrivileges =
  (on: boolean): SpecOpt =>
  (s) => {
    s.process.noNewPrivileges = on;
  };

/** Privileged: all host devices, no masked or read-only paths, /sys read-write. */
export const withPrivileged =
  (on: boolean): SpecOpt =>
  (s) => {
    if (!on) return;
    s.linux.maskedPaths = [];
    s.linux.readonlyPaths = [];
    s.linux.resources.devices = [{ allow: true, access: 'rwm' }];
    for (const m of s.mounts)
      if (m.destination === '/sys' || m.destination === '/sys/fs/cgroup')
        m.options = (m.options ?? []).filter((o) => o !== 'ro').concat('rw');
  };

export const withReadonlyRootfs =
  (on: boolean): SpecOpt =>
  (s) => {
    s.root.readonly = on;
  };

export const withMounts =
  (mounts: OciMount[]): SpecOpt =>
  (s) => {
    const targets = new Set(mounts.map((m) => m.destination));
    // A user mount over a default one (e.g. --tmpfs /dev/shm) replaces it.
    s.mounts = s.mounts.filter((m) => !targets.has(m.destination)).concat(mounts);
  };

export interface ResourceLimits {
  memory?: number;
  memorySwap?: number;
  nanoCpus?: number;
  cpuShares?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  pidsLimit?: number | null;
}

export const withResources =
  (r: ResourceLimits): SpecOpt =>
  (s) => {
    const res = s.linux.resources;
    if (r.memory && r.memory > 0) {
      res.memory = { limit: r.memory };
      if (r.memorySwap && r.memorySwap !== 0) res.memory.swap = r.memorySwap;
    }
    if (r.nanoCpus && r.nanoCpus > 0) {
      res.cpu = { period: 100_000, quota: Math.round((r.nanoCpus * 100_000) / 1e9) };
    } else if (r.cpuQuota || r.cpuPeriod) {
      res.cpu = { quota: r.cpuQuota || undefined, period: r.cpuPeriod || undefined };
    }
    if (r.cpuShares) res.cpu = { ...(res.cpu ?? {}), shares: r.cpuShares };
    if (r.pidsLimit && r.pidsLimit > 0) res.pids = { limit: r.pidsLimit };
  };

export const withCgroupsPath =
  (path: string): SpecOpt =>
  (s) => {
    s.linux.cgroupsPath = path;
  };

/** rlimits: capped at the host's hard limits, which this daemon cannot raise. */
export const withRlimits =
  (limits: { type: string; soft: number; hard: number }[], hostHard: (type: string) => number): SpecOpt =>
  (s) => {
    s.process.rlimits = limits.map((l) => {
      const cap = hostHard(l.type);
      const hard = Math.min(l.hard, cap);
      return { type: l.type, hard, soft: Math.min(l.soft, hard) };
    });
  };

export const withSysctls =
  (sysctls: Record<string, string>): SpecOpt =>
  (s) => {
    if (Object.keys(sysctls).length) s.linux.sysctl = { ...(s.linux.sysctl ?? {}), ...sysctls };
  };
