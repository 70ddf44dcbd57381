/** `run`/`create` flags → the `POST /containers/create` body, as docker's `parse()` builds it. */
import { readFileSync } from 'node:fs';
import type { Command } from '../args.js';
import { collect, keyValues } from '../cli.js';
import { parseGoDuration, ramInBytes } from '../units.js';

export function addCreateOptions(cmd: Command): Command {
  return cmd
    .option('-i, --interactive', 'Keep STDIN open even if not attached')
    .option('-t, --tty', 'Allocate a pseudo-TTY')
    .option('-a, --attach <stream>', 'Attach to STDIN, STDOUT or STDERR', collect)
    .option('--name <name>', 'Assign a name to the container')
    .option('-e, --env <list>', 'Set environment variables', collect)
    .option('--env-file <file>', 'Read in a file of environment variables', collect)
    .option('-p, --publish <list>', "Publish a container's port(s) to the host", collect)
    .option('-P, --publish-all', 'Publish all exposed ports to random ports')
    .option('--expose <list>', 'Expose a port or a range of ports', collect)
    .option('-v, --volume <list>', 'Bind mount a volume', collect)
    .option('--mount <mount>', 'Attach a filesystem mount to the container', collect)
    .option('--tmpfs <list>', 'Mount a tmpfs directory', collect)
    .option('--volumes-from <list>', 'Mount volumes from the specified container(s)', collect)
    .option('--network <network>', 'Connect a container to a network')
    .option('--network-alias <list>', 'Add network-scoped alias for the container', collect)
    .option('--ip <address>', 'IPv4 address (e.g., 172.30.100.104)')
    .option('--ip6 <address>', 'IPv6 address (e.g., 2001:db8::33)')
    .option('--mac-address <string>', 'Container MAC address')
    .option('--dns <list>', 'Set custom DNS servers', collect)
    .option('--dns-search <list>', 'Set custom DNS search domains', collect)
    .option('--dns-option <list>', 'Set DNS options', collect)
    .option('--add-host <list>', 'Add a custom host-to-IP mapping (host:ip)', collect)
    .option('-h, --hostname <string>', 'Container host name')
    .option('--domainname <string>', 'Container NIS domain name')
    .option('-u, --user <string>', 'Username or UID (format: <name|uid>[:<group|gid>])')
    .option('--group-add <list>', 'Add additional groups to join', collect)
    .option('-w, --workdir <string>', 'Working directory inside the container')
    .option('--entrypoint <string>', 'Overwrite the default ENTRYPOINT of the image')
    .option('--restart <string>', 'Restart policy to apply when a container exits', 'no')
    .option('--rm', 'Automatically remove the container and its associated anonymous volumes when it exits')
    .option('--init', 'Run an init inside the container that forwards signals and reaps processes')
    .option('--read-only', "Mount the container's root filesystem as read only")
    .option('--privileged', 'Give extended privileges to this container')
    .option('--cap-add <list>', 'Add Linux capabilities', collect)
    .option('--cap-drop <list>', 'Drop Linux capabilities', collect)
    .option('--security-opt <list>', 'Security Options', collect)
    .option('-m, --memory <bytes>', 'Memory limit')
    .option('--memory-swap <bytes>', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option('--memory-reservation <bytes>', 'Memory soft limit')
    .option('--cpus <decimal>', 'Number of CPUs')
    .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
    .option('--cpuset-cpus <string>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--pids-limit <int>', 'Tune container pids limit (set -1 for unlimited)')
    .option('--ulimit <ulimit>', 'Ulimit options', collect)
    .option('--shm-size <bytes>', 'Size of /dev/shm')
    .option('--sysctl <map>', 'Sysctl options', collect)
    .option('--ipc <string>', 'IPC mode to use')
    .option('--pid <string>', 'PID namespace to use')
    .option('--uts <string>', 'UTS namespace to use')
    .option('--userns <string>', 'User namespace to use')
    .option('--cgroupns <string>', 'Cgroup namespace to use (host|private)')
    .option('--oom-score-adj <int>', "Tune host's OOM preferences (-1000 to 1000)")
    .option('-l, --label <list>', 'Set meta data on a container', collect)
    .option('--label-file <list>', 'Read in a line delimited file of labels', collect)
    .option('--stop-signal <string>', 'Signal to stop the container')
    .option('--stop-timeout <int>', 'Timeout (in seconds) to stop a container')
    .option('--log-driver <string>', 'Logging driver for the container')
    .option('--log-opt <list>', 'Log driver options', collect)
    .option('--health-cmd <string>', 'Command to run to check health')
    .option('--health-interval <duration>', 'Time between running the check (ms|s|m|h) (default 0s)')
    .option('--health-timeout <duration>', 'Maximum time to allow one check to run (ms|s|m|h) (default 0s)')
    .option('--health-retries <int>', 'Consecutive failures needed to report unhealthy')
    .option('--health-start-period <duration>', 'Start period for the container to initialize (ms|s|m|h)')
    .option('--health-start-interval <duration>', 'Time between running the check during the start period')
    .option('--no-healthcheck', 'Disable any container-specified HEALTHCHECK')
    .option('--runtime <string>', 'Runtime to use for this container')
    .option('--platform <string>', 'Set platform if server is multi-platform capable')
    .option('--pull <string>', 'Pull image before running ("always", "missing", "never")', 'missing')
    .option('-q, --quiet', 'Suppress the pull output')
    .option('--cidfile <string>', 'Write the container ID to the file');
}

export interface CreateRequest {
  name?: string;
  platform?: string;
  body: Record<string, any>;
}

/** `-e VAR` without `=` takes the value from the CLI's environment when set. */
function envEntry(e: string): string {
  if (e.includes('=')) return e;
  const v = process.env[e];
  return v === undefined ? e : `${e}=${v}`;
}

function readLines(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `open ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`,
    );
  }
  return text
    .split('\n')
    .map((l) => l.replace(/^\s+/, ''))
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function nsDuration(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const ms = parseGoDuration(v);
  if (ms === undefined)
    throw new Error(`invalid argument "${v}" for "${flag}" flag: time: invalid duration "${v}"`);
  return Math.round(ms * 1e6);
}

/** `[ip:][hostPort:]containerPort[/proto]` → exposed ports and bindings (with ranges). */
export function parsePortSpec(spec: string): {
  exposed: string[];
  bindings: Record<string, { HostIp: string; HostPort: string }[]>;
} {
  let rest = spec;
  let proto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    proto = rest.slice(slash + 1) || 'tcp';
    rest = rest.slice(0, slash);
  }
  let ip = '';
  let hostPort = '';
  let containerPort = rest;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(rest);
  if (v6) {
    ip = v6[1]!;
    const parts = v6[2]!.split(':');
    if (parts.length !== 2) throw new Error(`invalid port format: ${spec}`);
    [hostPort, containerPort] = parts as [string, string];
  } else {
    const parts = rest.split(':');
    if (parts.length === 1) containerPort = parts[0]!;
    else if (parts.length === 2) [hostPort, containerPort] = parts as [string, string];
    else if (parts.length === 3) [ip, hostPort, containerPort] = parts as [string, string, string];
    else throw new Error(`invalid port format: ${spec}`);
  }
  const range = (s: string): [number, number] => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(s);
    if (!m) throw new Error(`invalid containerPort: ${s}`);
    const a = Number(m[1]);
    const b = m[2] ? Number(m[2]) : a;
    if (a < 1 || b > 65535 || b < a) throw new Error(`invalid containerPort: ${s}`);
    return [a, b];
  };
  const [c0, c1] = range(containerPort);
  let h0 = 0;
  let h1 = 0;
  if (hostPort) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(hostPort);
    if (!m) throw new Error(`invalid hostPort: ${hostPort}`);
    h0 = Number(m[1]);
    h1 = m[2] ? Number(m[2]) : h0;
  }
  const exposed: string[] = [];
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  const n = c1 - c0;
  if (hostPort && h1 - h0 !== n && !(h1 > h0 && n === 0))
    throw new Error(
      `invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`,
    );
  for (let i = 0; i <= n; i++) {
    const key = `${c0 + i}/${proto}`;
    exposed.push(key);
    let hp = '';
    if (hostPort) hp = n === 0 && h1 > h0 ? `${h0}-${h1}` : String(h0 + i);
    bindings[key] = [...(bindings[key] ?? []), { HostIp: ip, HostPort: hp }];
  }
  return { exposed, bindings };
}

/** `--mount type=…,source=…,target=…` → a HostConfig.Mounts entry. */
export function parseMount(spec: string): Record<string, any> {
  const m: Record<string, any> = { Type: 'volume' };
  let volOpts: Record<string, any> | undefined;
  let tmpfsOpts: Record<string, any> | undefined;
  let bindOpts: Record<string, any> | undefined;
  for (const field of spec.split(',')) {
    const i = field.indexOf('=');
    const key = (i < 0 ? field : field.slice(0, i)).trim().toLowerCase();
    const val = i < 0 ? undefined : field.slice(i + 1);
    const bool = (v: string | undefined) => v === undefined || ['1', 'true', 'yes'].includes(v.toLowerCase());
    switch (key) {
      case 'type':
        m.Type = val;
        break;
      case 'source':
      case 'src':
        m.Source = val;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.Target = val;
        break;
      case 'readonly':
      case 'ro':
        m.ReadOnly = bool(val);
        break;
      case 'consistency':
        m.Consistency = val;
        break;
      case 'bind-propagation':
        bindOpts = { ...(bindOpts ?? {}), Propagation: val };
        break;
      case 'bind-recursive':
        break;
      case 'volume-nocopy':
        volOpts = { ...(volOpts ?? {}), NoCopy: bool(val) };
        break;
      case 'volume-subpath':
        volOpts = { ...(volOpts ?? {}), Subpath: val };
        break;
      case 'volume-driver':
        volOpts = { ...(volOpts ?? {}), DriverConfig: { Name: val } };
        break;
      case 'volume-opt': {
        const [k, ...v] = (val ?? '').split('=');
        volOpts ??= {};
        volOpts.DriverConfig ??= {};
        volOpts.DriverConfig.Options ??= {};
        volOpts.DriverConfig.Options[k!] = v.join('=');
        break;
      }
      case 'volume-label': {
        const [k, ...v] = (val ?? '').split('=');
        volOpts ??= {};
        volOpts.Labels ??= {};
        volOpts.Labels[k!] = v.join('=');
        break;
      }
      case 'tmpfs-size':
        tmpfsOpts = { ...(tmpfsOpts ?? {}), SizeBytes: ramInBytes(val ?? '') };
        break;
      case 'tmpfs-mode':
        tmpfsOpts = { ...(tmpfsOpts ?? {}), Mode: Number.parseInt(val ?? '0', 8) };
        break;
      default:
        throw new Error(
          `invalid argument "${spec}" for "--mount" flag: unexpected key '${key}' in '${field}'`,
        );
    }
  }
  if (!m.Target) throw new Error(`invalid argument "${spec}" for "--mount" flag: target is required`);
  if (volOpts) m.VolumeOptions = volOpts;
  if (tmpfsOpts) m.TmpfsOptions = tmpfsOpts;
  if (bindOpts) m.BindOptions = bindOpts;
  return m;
}

function normalizeCap(c: string): string {
  const u = c.toUpperCase();
  if (u === 'ALL' || u.startsWith('CAP_')) return u;
  return `CAP_${u}`;
}

function restartPolicy(v: string): { Name: string; MaximumRetryCount: number } {
  const [name, count] = v.split(':');
  if (!['no', 'always', 'on-failure', 'unless-stopped', ''].includes(name!))
    throw new Error(`invalid restart policy: ${v}`);
  if (count !== undefined && name !== 'on-failure')
    throw new Error(`invalid restart policy format: maximum retry count can only be used with 'on-failure'`);
  return { Name: name || 'no', MaximumRetryCount: count ? Number(count) : 0 };
}

export interface ConsoleSize {
  rows: number;
  cols: number;
}

/** Builds the create request; `detach` clears the attach flags as `docker run -d` does. */
export function buildCreate(
  opts: Record<string, any>,
  image: string,
  args: string[],
  mode: { detach?: boolean; console?: ConsoleSize },
): CreateRequest {
  const attach: string[] = (opts.attach ?? []).map((s: string) => s.toLowerCase());
  for (const a of attach)
    if (!['stdin', 'stdout', 'stderr'].includes(a))
      throw new Error(
        `invalid argument "${a}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`,
      );
  let attachStdin = attach.includes('stdin');
  let attachStdout = attach.includes('stdout');
  let attachStderr = attach.includes('stderr');
  if (opts.interactive) attachStdin = true;
  if (!attach.length) {
    attachStdout = true;
    attachStderr = true;
  }
  let stdinOnce = !!opts.interactive && attachStdin;
  if (mode.detach) {
    attachStdin = attachStdout = attachStderr = false;
    stdinOnce = false;
  }

  const env: string[] = [];
  for (const f of opts.envFile ?? []) for (const l of readLines(f)) env.push(envEntry(l));
  for (const e of opts.env ?? []) env.push(envEntry(e));

  const labels: Record<string, string> = {};
  for (const f of opts.labelFile ?? []) Object.assign(labels, keyValues(readLines(f)));
  Object.assign(labels, keyValues(opts.label));

  const exposed: Record<string, object> = {};
  const portBindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const e of opts.expose ?? []) {
    const [p, proto = 'tcp'] = String(e).split('/');
    const m = /^(\d+)(?:-(\d+))?$/.exec(p!);
    if (!m) throw new Error(`invalid range format for --expose: ${e}`);
    for (let i = Number(m[1]); i <= Number(m[2] ?? m[1]); i++) exposed[`${i}/${proto}`] = {};
  }
  for (const p of opts.publish ?? []) {
    const r = parsePortSpec(p);
    for (const k of r.exposed) exposed[k] = {};
    for (const [k, v] of Object.entries(r.bindings)) portBindings[k] = [...(portBindings[k] ?? []), ...v];
  }

  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of opts.volume ?? []) {
    const parts = String(v).split(':');
    if (parts.length === 1) volumes[parts[0]!] = {};
    else binds.push(v);
  }
  const mounts = (opts.mount ?? []).map(parseMount);
  const tmpfs: Record<string, string> = {};
  for (const t of opts.tmpfs ?? []) {
    const i = String(t).indexOf(':');
    if (i < 0) tmpfs[t] = '';
    else tmpfs[t.slice(0, i)] = t.slice(i + 1);
  }

  let entrypoint: string[] | null = null;
  if (opts.entrypoint !== undefined) entrypoint = [opts.entrypoint];

  let healthcheck: Record<string, any> | undefined;
  if (opts.healthcheck === false) {
    if (opts.healthCmd) throw new Error('--no-healthcheck conflicts with --health-* options');
    healthcheck = { Test: ['NONE'] };
  } else if (
    opts.healthCmd ||
    opts.healthInterval ||
    opts.healthTimeout ||
    opts.healthRetries ||
    opts.healthStartPeriod
  ) {
    healthcheck = {
      Test: opts.healthCmd ? ['CMD-SHELL', opts.healthCmd] : null,
      Interval: nsDuration(opts.healthInterval, '--health-interval') ?? 0,
      Timeout: nsDuration(opts.healthTimeout, '--health-timeout') ?? 0,
      StartPeriod: nsDuration(opts.healthStartPeriod, '--health-start-period') ?? 0,
      StartInterval: nsDuration(opts.healthStartInterval, '--health-start-interval') ?? 0,
      Retries: opts.healthRetries ? Number(opts.healthRetries) : 0,
    };
  }

  const ulimits = (opts.ulimit ?? []).map((u: string) => {
    const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(u);
    if (!m) throw new Error(`invalid argument "${u}" for "--ulimit" flag: invalid ulimit argument: ${u}`);
    return { Name: m[1], Hard: Number(m[3] ?? m[2]), Soft: Number(m[2]) };
  });

  const logConfig = { Type: opts.logDriver ?? '', Config: keyValues(opts.logOpt) };

  let networkMode = opts.network ?? 'default';
  const endpoint: Record<string, any> = {};
  if (opts.ip || opts.ip6)
    endpoint.IPAMConfig = {
      ...(opts.ip ? { IPv4Address: opts.ip } : {}),
      ...(opts.ip6 ? { IPv6Address: opts.ip6 } : {}),
    };
  if (opts.networkAlias?.length) endpoint.Aliases = opts.networkAlias;
  if (opts.macAddress) endpoint.MacAddress = opts.macAddress;
  if (networkMode === '') networkMode = 'default';
  const endpoints: Record<string, any> = { [networkMode]: endpoint };

  const extraHosts = (opts.addHost ?? []).map((h: string) => {
    // host=ip is accepted as host:ip
    const eq = h.indexOf('=');
    return eq > 0 && !h.slice(0, eq).includes(':') ? `${h.slice(0, eq)}:${h.slice(eq + 1)}` : h;
  });

  const hostConfig: Record<string, any> = {
    Binds: binds.length ? binds : null,
    ContainerIDFile: opts.cidfile ?? '',
    LogConfig: logConfig,
    NetworkMode: networkMode,
    PortBindings: portBindings,
    RestartPolicy: restartPolicy(opts.restart ?? 'no'),
    AutoRemove: !!opts.rm,
    VolumeDriver: '',
    VolumesFrom: opts.volumesFrom ?? null,
    ConsoleSize: mode.console ? [mode.console.rows, mode.console.cols] : [0, 0],
    CapAdd: opts.capAdd ? opts.capAdd.map(normalizeCap) : null,
    CapDrop: opts.capDrop ? opts.capDrop.map(normalizeCap) : null,
    CgroupnsMode: opts.cgroupns ?? '',
    Dns: opts.dns ?? [],
    DnsOptions: opts.dnsOption ?? [],
    DnsSearch: opts.dnsSearch ?? [],
    ExtraHosts: extraHosts.length ? extraHosts : null,
    GroupAdd: opts.groupAdd ?? null,
    IpcMode: opts.ipc ?? '',
    Cgroup: '',
    Links: null,
    OomScoreAdj: opts.oomScoreAdj ? Number(opts.oomScoreAdj) : 0,
    PidMode: opts.pid ?? '',
    Privileged: !!opts.privileged,
    PublishAllPorts: !!opts.publishAll,
    ReadonlyRootfs: !!opts.readOnly,
    SecurityOpt: opts.securityOpt ? opts.securityOpt.map(seccompProfileInline) : null,
    Tmpfs: Object.keys(tmpfs).length ? tmpfs : undefined,
    UTSMode: opts.uts ?? '',
    UsernsMode: opts.userns ?? '',
    ShmSize: opts.shmSize ? ramInBytes(opts.shmSize) : 0,
    Sysctls: opts.sysctl ? keyValues(opts.sysctl) : undefined,
    Runtime: opts.runtime ?? '',
    Isolation: '',
    CpuShares: opts.cpuShares ? Number(opts.cpuShares) : 0,
    Memory: opts.memory ? ramInBytes(opts.memory) : 0,
    NanoCpus: opts.cpus ? Math.round(Number(opts.cpus) * 1e9) : 0,
    CgroupParent: '',
    BlkioWeight: 0,
    CpuPeriod: 0,
    CpuQuota: 0,
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: opts.cpusetCpus ?? '',
    CpusetMems: '',
    Devices: [],
    DeviceCgroupRules: null,
    DeviceRequests: null,
    MemoryReservation: opts.memoryReservation ? ramInBytes(opts.memoryReservation) : 0,
    MemorySwap: opts.memorySwap ? (opts.memorySwap === '-1' ? -1 : ramInBytes(opts.memorySwap)) : 0,
    MemorySwappiness: -1,
    OomKillDisable: false,
    PidsLimit: opts.pidsLimit !== undefined ? Number(opts.pidsLimit) : null,
    Ulimits: ulimits.length ? ulimits : null,
    Mounts: mounts.length ? mounts : undefined,
    MaskedPaths: null,
    ReadonlyPaths: null,
  };
  if (opts.init) hostConfig.Init = true;
  for (const k of Object.keys(hostConfig)) if (hostConfig[k] === undefined) delete hostConfig[k];

  if (opts.cpus && Number.isNaN(Number(opts.cpus)))
    throw new Error(
      `invalid argument "${opts.cpus}" for "--cpus" flag: failed to parse ${opts.cpus} as a rational number`,
    );

  const body: Record<string, any> = {
    Hostname: opts.hostname ?? '',
    Domainname: opts.domainname ?? '',
    User: opts.user ?? '',
    AttachStdin: attachStdin,
    AttachStdout: attachStdout,
    AttachStderr: attachStderr,
    ExposedPorts: Object.keys(exposed).length ? exposed : undefined,
    Tty: !!opts.tty,
    OpenStdin: !!opts.interactive,
    StdinOnce: stdinOnce,
    Env: env,
    Cmd: args.length ? args : null,
    Healthcheck: healthcheck,
    Image: image,
    Volumes: volumes,
    WorkingDir: opts.workdir ?? '',
    Entrypoint: entrypoint,
    OnBuild: null,
    Labels: labels,
    StopSignal: opts.stopSignal,
    StopTimeout: opts.stopTimeout !== undefined ? Number(opts.stopTimeout) : undefined,
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: endpoints },
  };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  return { name: opts.name, platform: opts.platform, body };
}

/** As the docker CLI: `seccomp=FILE` is sent as the file's JSON, read on the client's host. */
function seccompProfileInline(opt: string): string {
  const m = /^seccomp[=:](.+)$/.exec(opt);
  if (!m || m[1] === 'unconfined' || m[1] === 'builtin') return opt;
  let text: string;
  try {
    text = readFileSync(m[1], 'utf8');
  } catch (e) {
    throw new Error(`opening seccomp profile (${m[1]}) failed: ${(e as Error).message}`);
  }
  return `seccomp=${JSON.stringify(JSON.parse(text))}`;
}
