/** The OCI spec of a container, from its record and what the lower layers prepared. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { compiledSeccomp } from '../runtime/spec/seccomp-bpf.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import type { NetworkAttachment } from '../network/index.js';
import {
  buildSpec,
  withCapabilities,
  withCgroupsPath,
  withCwd,
  withEnv,
  withHostname,
  withMounts,
  withNetworkNamespace,
  withNoNewPrivileges,
  withPrivileged,
  withProcessArgs,
  withReadonlyRootfs,
  withResources,
  withRlimits,
  withSeccomp,
  withSysctls,
  withTerminal,
  withUser,
} from '../runtime/spec/opts.js';
import type { OciMount, OciSpec } from '../runtime/spec/types.js';
import { invalid } from '../util/errors.js';
import type { ContainerRecord } from '../model/container.js';
import { resolveUser } from './user.js';

export const INIT_BINARY = '/usr/bin/tini-static';
const INIT_PATH = '/sbin/docker-init';

const RLIMIT_NAMES: Record<string, string> = {
  'Max cpu time': 'cpu',
  'Max file size': 'fsize',
  'Max data size': 'data',
  'Max stack size': 'stack',
  'Max core file size': 'core',
  'Max resident set': 'rss',
  'Max processes': 'nproc',
  'Max open files': 'nofile',
  'Max locked memory': 'memlock',
  'Max address space': 'as',
  'Max file locks': 'locks',
  'Max pending signals': 'sigpending',
  'Max msgqueue size': 'msgqueue',
  'Max nice priority': 'nice',
  'Max realtime priority': 'rtprio',
  'Max realtime timeout': 'rttime',
};

let hostHard: Map<string, number> | undefined;
function hostHardLimit(type: string): number {
  if (!hostHard) {
    hostHard = new Map();
    for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)) {
      const m = /^(.*?)\s{2,}(\S+)\s+(\S+)/.exec(line);
      if (!m) continue;
      const name = RLIMIT_NAMES[m[1].trim()];
      if (name) hostHard.set(name, m[3] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[3]));
    }
  }
  return hostHard.get(type.replace(/^RLIMIT_/i, '').toLowerCase()) ?? Number.MAX_SAFE_INTEGER;
}

export interface SpecInputs {
  rootfs: string;
  net: NetworkAttachment;
  mounts: OciMount[];
  config: DaemonConfig;
}

function securityOpts(opts: string[]): {
  noNewPrivileges: boolean;
  seccompUnconfined: boolean;
  seccompFile?: string;
} {
  let noNewPrivileges = false;
  let seccompUnconfined = false;
  let seccompFile: string | undefined;
  for (const o of opts) {
    // Split at the first separator only: a seccomp profile's JSON holds both characters.
    const at = o.includes('=') ? o.indexOf('=') : o.indexOf(':');
    const k = at < 0 ? o : o.slice(0, at);
    const v = at < 0 ? undefined : o.slice(at + 1);
    if (k === 'no-new-privileges') noNewPrivileges = v === undefined || v === 'true';
    else if (k === 'seccomp') {
      if (v === 'unconfined') seccompUnconfined = true;
      else if (v && v !== 'builtin') seccompFile = v;
    } else if (k === 'label' || k === 'apparmor') {
      // No SELinux/AppArmor on this host: accepted and ignored, as dockerd does without them.
    } else throw invalid(`Invalid --security-opt: "${o}"`);
  }
  return { noNewPrivileges, seccompUnconfined, seccompFile };
}

export function containerSpec(c: ContainerRecord, inp: SpecInputs): OciSpec {
  const h = c.HostConfig;
  const user = resolveUser(inp.rootfs, c.Config.User);
  const env = [...c.Config.Env];
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${c.Config.Hostname}`);
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
  if (c.Config.Tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
  let args = [c.Path, ...c.Args];
  const files: OciMount[] = [
    {
      destination: '/etc/resolv.conf',
      type: 'bind',
      source: c.ResolvConfPath,
      options: ['rbind', 'rprivate'],
    },
    { destination: '/etc/hostname', type: 'bind', source: c.HostnamePath, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hosts', type: 'bind', source: c.HostsPath, options: ['rbind', 'rprivate'] },
  ];
  if (h.Init) {
    files.push({
      destination: INIT_PATH,
      type: 'bind',
      source: INIT_BINARY,
      options: ['rbind', 'ro', 'rprivate'],
    });
    args = [INIT_PATH, '--', ...args];
  }
  const sec = securityOpts(h.SecurityOpt ?? []);
  const privileged = Boolean(h.Privileged);
  const shm: OciMount[] = h.ShmSize
    ? [
        {
          destination: '/dev/shm',
          type: 'tmpfs',
          source: 'shm',
          options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${h.ShmSize}`],
        },
      ]
    : [];
  return buildSpec(inp.rootfs, [
    withProcessArgs(args),
    withEnv(env),
    withCwd(c.Config.WorkingDir),
    withUser(user.uid, user.gid, user.additionalGids),
    withTerminal(c.Config.Tty, h.ConsoleSize),
    withHostname(inp.net.hostNetwork ? '' : c.Config.Hostname),
    withNetworkNamespace({ path: inp.net.netnsPath, host: inp.net.hostNetwork }),
    withCapabilities(h.CapAdd ?? [], h.CapDrop ?? [], privileged),
    withSeccomp({
      unconfined: sec.seccompUnconfined || privileged,
      file: sec.seccompFile,
      precompile:
        (c.HostConfig.Runtime || inp.config.defaultRuntime) === 'crun'
          ? (section) => compiledSeccomp(section, path.join(inp.config.execRoot, 'seccomp'))
          : undefined,
    }),
    withNoNewPrivileges(sec.noNewPrivileges),
    withPrivileged(privileged),
    withReadonlyRootfs(Boolean(h.ReadonlyRootfs)),
    withMounts([...shm, ...files, ...inp.mounts]),
    withResources({
      memory: h.Memory,
      memorySwap: h.MemorySwap,
      nanoCpus: h.NanoCpus,
      cpuShares: h.CpuShares,
      cpuQuota: h.CpuQuota,
      cpuPeriod: h.CpuPeriod,
      pidsLimit: h.PidsLimit,
    }),
    withCgroupsPath(`/${inp.config.cgroupParent}/${c.Id}`),
    withSysctls(h.Sysctls ?? {}),
    withRlimits(
      (h.Ulimits ?? []).map((u) => ({ type: `RLIMIT_${u.Name.toUpperCase()}`, soft: u.Soft, hard: u.Hard })),
      hostHardLimit,
    ),
  ]);
}
