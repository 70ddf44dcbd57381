/**
 * From a create request (Docker's `ContainerCreateRequest`) and the image, the container record:
 * Docker's merge rules for Cmd/Entrypoint/Env/…, validation worded as Docker's.
 */
import type { Image } from '../images/index.js';
import { invalid } from '../util/errors.js';
import type { ContainerConfig, ContainerRecord, EndpointSettings, HostConfig } from '../model/container.js';
import { mergeHealthcheck, validateHealthcheck } from './health.js';

export interface CreateRequest extends Partial<ContainerConfig> {
  HostConfig?: HostConfig;
  NetworkingConfig?: { EndpointsConfig?: Record<string, EndpointSettings> | null } | null;
  [key: string]: unknown;
}

const RESTART = ['', 'no', 'always', 'on-failure', 'unless-stopped'];

function mergeEnv(base: string[], over: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...over]) {
    const k = e.split('=', 1)[0];
    out.set(k, e);
  }
  return [...out.values()];
}

function arr(v: unknown, field: string): string[] | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`invalid ${field}: expected a list of strings`);
  return v as string[];
}

export function validateHostConfig(h: HostConfig): void {
  const rp = h.RestartPolicy;
  if (rp && !RESTART.includes(rp.Name ?? '')) throw invalid(`invalid restart policy: unknown policy '${rp.Name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  if (rp && rp.Name !== 'on-failure' && (rp.MaximumRetryCount ?? 0) > 0)
    throw invalid(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  if (rp && (rp.MaximumRetryCount ?? 0) < 0) throw invalid('invalid restart policy: maximum retry count must be a positive integer');
  if (h.AutoRemove && rp?.Name && rp.Name !== 'no') throw invalid(`conflicting options: cannot specify both --restart and --rm`);
  if (h.Memory !== undefined && h.Memory !== 0 && h.Memory < 6 * 1024 * 1024) throw invalid('Minimum memory limit allowed is 6MB');
  validateSysctls(h);
  if (h.NanoCpus && h.NanoCpus < 0) throw invalid('Range of CPUs is from 0.01 to the number of CPUs available');
  if (h.CpuQuota && h.NanoCpus) throw invalid('Conflicting options: Nano CPUs and CPU Period cannot both be set');
}

/** Only sysctls of a namespace the container has its own of can be set (the host's are not ours). */
const NAMESPACED_SYSCTLS = /^(kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)|fs\.mqueue\..+|net\..+)$/;

function validateSysctls(h: HostConfig): void {
  const sysctls = h.Sysctls ?? {};
  if (typeof sysctls !== 'object' || Array.isArray(sysctls)) throw invalid('invalid Sysctls: expected an object');
  const hostNet = h.NetworkMode === 'host' || (h.NetworkMode ?? '').startsWith('container:');
  for (const k of Object.keys(sysctls)) {
    if (!NAMESPACED_SYSCTLS.test(k)) throw invalid(`sysctl '${k}' is not allowed: it is not in a separate kernel namespace`);
    if (hostNet && k.startsWith('net.')) throw invalid(`sysctl '${k}' is not allowed in host network namespace`);
  }
}

export function buildRecord(id: string, name: string, req: CreateRequest, image: Image, imageRef: string, paths: { dir: string }): ContainerRecord {
  if (typeof req !== 'object' || req === null || Array.isArray(req)) throw invalid('invalid JSON: expected an object');
  const ic = image.config.config ?? {};
  const hostConfig: HostConfig = { ...(req.HostConfig ?? {}) };
  validateHostConfig(hostConfig);
  const reqCmd = arr(req.Cmd, 'Cmd');
  const reqEntry = arr(req.Entrypoint, 'Entrypoint');
  // Docker: an Entrypoint given at create drops the image's Cmd unless a Cmd is given too.
  const entrypoint = reqEntry !== null ? (reqEntry.length === 1 && reqEntry[0] === '' ? [] : reqEntry) : (ic.Entrypoint ?? []);
  const cmd = reqCmd !== null && reqCmd.length > 0 ? reqCmd : reqEntry !== null ? [] : (ic.Cmd ?? []);
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) throw invalid('no command specified');
  const env = mergeEnv(ic.Env ?? [], arr(req.Env, 'Env') ?? []);
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  const labels = { ...(ic.Labels ?? {}), ...((req.Labels as Record<string, string> | undefined) ?? {}) };
  const config: ContainerConfig = {
    Hostname: req.Hostname || id.slice(0, 12),
    Domainname: req.Domainname ?? '',
    User: req.User || ic.User || '',
    AttachStdin: Boolean(req.AttachStdin),
    AttachStdout: req.AttachStdout ?? false,
    AttachStderr: req.AttachStderr ?? false,
    ExposedPorts: { ...(ic.ExposedPorts ?? {}), ...(req.ExposedPorts ?? {}) },
    Tty: Boolean(req.Tty),
    OpenStdin: Boolean(req.OpenStdin),
    StdinOnce: Boolean(req.StdinOnce),
    Env: env,
    Cmd: cmd.length ? cmd : null,
    Healthcheck: mergeHealthcheck(req.Healthcheck as ContainerConfig['Healthcheck'], ic.Healthcheck as ContainerConfig['Healthcheck']),
    Image: imageRef,
    Volumes: { ...(ic.Volumes ?? {}), ...(req.Volumes ?? {}) },
    WorkingDir: req.WorkingDir || ic.WorkingDir || '',
    Entrypoint: entrypoint.length ? entrypoint : null,
    OnBuild: null,
    Labels: labels,
    StopSignal: req.StopSignal || ic.StopSignal || undefined,
    StopTimeout: req.StopTimeout,
  };
  const shell = arr(req.Shell, 'Shell') ?? ic.Shell;
  if (shell?.length) config.Shell = shell;
  validateHealthcheck(config.Healthcheck);
  if (config.WorkingDir && !config.WorkingDir.startsWith('/')) throw invalid(`the working directory '${config.WorkingDir}' is invalid, it needs to be an absolute path`);
  if (!hostConfig.NetworkMode || hostConfig.NetworkMode === 'default') hostConfig.NetworkMode = 'bridge';
  if (!hostConfig.RestartPolicy) hostConfig.RestartPolicy = { Name: 'no', MaximumRetryCount: 0 };
  const endpoints = { ...(req.NetworkingConfig?.EndpointsConfig ?? {}) };
  if (endpoints.default) {
    endpoints[hostConfig.NetworkMode] = endpoints.default;
    delete endpoints.default;
  }
  const zero = '0001-01-01T00:00:00Z';
  return {
    Id: id,
    Created: new Date().toISOString(),
    Path: argv[0],
    Args: argv.slice(1),
    Name: name,
    Image: image.id,
    ImageName: imageRef,
    Config: config,
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: endpoints },
    State: { Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: zero, FinishedAt: zero },
    RestartCount: 0,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    LogPath: `${paths.dir}/ctr.log`,
    ResolvConfPath: `${paths.dir}/resolv.conf`,
    HostnamePath: `${paths.dir}/hostname`,
    HostsPath: `${paths.dir}/hosts`,
    Mounts: [],
    NetworkSettings: { Bridge: '', SandboxID: '', SandboxKey: '', Ports: {}, Networks: {} },
  };
}
