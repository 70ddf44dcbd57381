/** version, info, events, system df, login, logout. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ApiError, CLIENT_API_VERSION, ConnectError } from '../../client/client.js';
import { type Cli, errorMessage, StatusError } from '../cli.js';
import { finalFormat, isTable, renderRows, row } from '../formatter.js';
import { goArch } from '../../util/platform.js';
import { tabwrite } from '../tabwriter.js';
import { Template } from '../template.js';
import { bytesSize, humanSize, parseTimestamp } from '../units.js';
import { filtersJson } from './container.js';
import { INDEX_SERVER, readConfig } from './pull.js';

export const CLIENT_VERSION = '0.1.0';

const VERSION_TEMPLATE = `{{with .Client -}}
Client:{{if ne .Platform nil}}{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:\t{{.GoVersion}}
 Git commit:\t{{.GitCommit}}
 Built:\t{{.BuildTime}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:\t{{index $component.Details $key}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}`;

/** Go's time.ANSIC for an RFC 3339 build time (docker's reformatDate). */
function reformatDate(s: string): string {
  const ms = Date.parse(s);
  if (!s || Number.isNaN(ms)) return s;
  const d = new Date(ms);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${d.getFullYear()}`;
}

export async function version(cli: Cli, opts: Record<string, any>): Promise<void> {
  const client: Record<string, any> = {
    Version: CLIENT_VERSION,
    ApiVersion: CLIENT_API_VERSION,
    DefaultAPIVersion: CLIENT_API_VERSION,
    GitCommit: 'berth',
    GoVersion: `node${process.versions.node}`,
    Os: 'linux',
    Arch: goArch(),
    BuildTime: '',
    Context: 'default',
  };
  let server: any;
  let failure: unknown;
  try {
    server = await cli.client.get('/version');
    client.ApiVersion = await cli.client.apiVersion();
    for (const c of server.Components ?? [])
      if (c.Name === 'Engine' && c.Details?.BuildTime)
        c.Details.BuildTime = reformatDate(c.Details.BuildTime);
    if (!(server.Components ?? []).some((c: any) => c.Name === 'Engine')) {
      server.Components = [
        ...(server.Components ?? []),
        {
          Name: 'Engine',
          Version: server.Version,
          Details: {
            ApiVersion: server.ApiVersion,
            MinAPIVersion: server.MinAPIVersion,
            GitCommit: server.GitCommit,
            GoVersion: server.GoVersion,
            Os: server.Os,
            Arch: server.Arch,
            BuildTime: reformatDate(server.BuildTime ?? ''),
            Experimental: String(!!server.Experimental),
          },
        },
      ];
    }
  } catch (err) {
    failure = err;
  }
  // Template field names as in docker's structs (APIVersion in templates, ApiVersion in JSON).
  const clientView = { ...client, APIVersion: client.ApiVersion };
  Object.defineProperty(clientView, 'APIVersion', { enumerable: false, value: client.ApiVersion });
  const data = { Client: clientView, Server: server ?? null };
  const format: string = opts.format ?? '';
  let tmpl: Template;
  try {
    tmpl = new Template(format === '' ? VERSION_TEMPLATE : format === 'json' ? '{{json .}}' : format, {
      getDetailsOrder: (c: any) => Object.keys(c?.Details ?? {}).sort(),
    });
  } catch (err) {
    throw new StatusError(64, `template parsing error: ${(err as Error).message}`);
  }
  let text: string;
  try {
    text = tmpl.execute(data);
  } catch (err) {
    if (failure) throw failure;
    throw new StatusError(1, `template: version: ${(err as Error).message}`);
  }
  cli.out(tabwrite(text + '\n', 20, 1));
  if (failure) throw failure;
}

function fprintln(...a: unknown[]): string {
  return a.map((x) => (typeof x === 'string' ? x : String(x))).join(' ') + '\n';
}

function nonEmpty(label: string, v: unknown): string {
  return v === undefined || v === null || v === '' ? '' : fprintln(label, v);
}

export async function info(cli: Cli, opts: Record<string, any>): Promise<void> {
  const clientInfo = { Debug: false, Context: 'default', Plugins: [], Warnings: null };
  let i: any;
  let serverErr: unknown;
  try {
    i = await cli.client.get('/info');
  } catch (err) {
    if (!(err instanceof ApiError) && !(err instanceof ConnectError)) throw err;
    serverErr = err;
  }
  if (opts.format) {
    const data = {
      ...(i ?? {}),
      ClientInfo: clientInfo,
      ClientErrors: null,
      ServerErrors: serverErr ? [errorMessage(serverErr)] : null,
    };
    const f = opts.format === 'json' ? '{{json .}}' : opts.format;
    let tmpl: Template;
    try {
      tmpl = new Template(f);
    } catch (err) {
      throw new StatusError(64, `template parsing error: ${(err as Error).message}`);
    }
    cli.out(tmpl.execute(data) + '\n');
    if (serverErr) throw new StatusError(1, errorMessage(serverErr));
    return;
  }
  let o = 'Client:\n';
  o += fprintln(' Version:   ', CLIENT_VERSION);
  o += fprintln(' Context:   ', 'default');
  o += fprintln(' Debug Mode:', false);
  o += '\n';
  o += 'Server:\n';
  if (serverErr) {
    cli.out(o);
    throw new StatusError(1, `ERROR: ${errorMessage(serverErr)}\nerrors pretty printing info`);
  }
  o += fprintln(' Containers:', i.Containers);
  o += fprintln('  Running:', i.ContainersRunning);
  o += fprintln('  Paused:', i.ContainersPaused);
  o += fprintln('  Stopped:', i.ContainersStopped);
  o += fprintln(' Images:', i.Images);
  o += nonEmpty(' Server Version:', i.ServerVersion);
  o += nonEmpty(' Storage Driver:', i.Driver);
  for (const [k, v] of i.DriverStatus ?? []) o += `  ${k}: ${v}\n`;
  for (const [k, v] of i.SystemStatus ?? []) o += ` ${k}: ${v}\n`;
  o += nonEmpty(' Logging Driver:', i.LoggingDriver);
  o += nonEmpty(' Cgroup Driver:', i.CgroupDriver);
  o += nonEmpty(' Cgroup Version:', i.CgroupVersion);
  o += ' Plugins:\n';
  o += fprintln('  Volume:', (i.Plugins?.Volume ?? []).join(' '));
  o += fprintln('  Network:', (i.Plugins?.Network ?? []).join(' '));
  if (i.Plugins?.Authorization?.length) o += fprintln('  Authorization:', i.Plugins.Authorization.join(' '));
  o += fprintln('  Log:', (i.Plugins?.Log ?? []).join(' '));
  if (i.CDISpecDirs?.length) {
    o += ' CDI spec directories:\n';
    for (const d of i.CDISpecDirs) o += `  ${d}\n`;
  }
  o += fprintln(' Swarm:', i.Swarm?.LocalNodeState ?? '');
  const runtimes = Object.keys(i.Runtimes ?? {});
  if (runtimes.length) {
    o += fprintln(' Runtimes:', runtimes.join(' '));
    o += fprintln(' Default Runtime:', i.DefaultRuntime ?? '');
  }
  if (i.OSType === 'linux') {
    o += fprintln(' Init Binary:', i.InitBinary ?? '');
    o += fprintln(' containerd version:', i.ContainerdCommit?.ID ?? '');
    o += fprintln(' runc version:', i.RuncCommit?.ID ?? '');
    o += fprintln(' init version:', i.InitCommit?.ID ?? '');
    if (i.SecurityOptions?.length) {
      o += ' Security Options:\n';
      for (const so of i.SecurityOptions as string[]) {
        const fields = so.split(',').map((f) => f.split('='));
        const name = fields.find(([k]) => k === 'name')?.[1] ?? so;
        o += `  ${name}\n`;
        for (const [k, v] of fields) if (k === 'profile') o += fprintln('   Profile:', v);
      }
    }
  }
  o += nonEmpty(' Kernel Version:', i.KernelVersion);
  o += nonEmpty(' Operating System:', i.OperatingSystem);
  o += nonEmpty(' OSType:', i.OSType);
  o += nonEmpty(' Architecture:', i.Architecture);
  o += fprintln(' CPUs:', i.NCPU);
  o += fprintln(' Total Memory:', bytesSize(i.MemTotal ?? 0));
  o += nonEmpty(' Name:', i.Name);
  o += nonEmpty(' ID:', i.ID);
  o += fprintln(' Docker Root Dir:', i.DockerRootDir ?? '');
  o += fprintln(' Debug Mode:', !!i.Debug);
  if (i.Debug) {
    o += fprintln('  File Descriptors:', i.NFd);
    o += fprintln('  Goroutines:', i.NGoroutines);
    o += fprintln('  System Time:', i.SystemTime);
    o += fprintln('  EventsListeners:', i.NEventsListener);
  }
  o += nonEmpty(' HTTP Proxy:', i.HttpProxy);
  o += nonEmpty(' HTTPS Proxy:', i.HttpsProxy);
  o += nonEmpty(' No Proxy:', i.NoProxy);
  o += nonEmpty(' Username:', i.UserName);
  if (i.Labels?.length) {
    o += ' Labels:\n';
    for (const l of i.Labels) o += `  ${l}\n`;
  }
  o += fprintln(' Experimental:', !!i.ExperimentalBuild);
  const rc = i.RegistryConfig;
  if (rc && ((rc.InsecureRegistryCIDRs ?? []).length || Object.keys(rc.IndexConfigs ?? {}).length)) {
    o += ' Insecure Registries:\n';
    for (const c of Object.values(rc.IndexConfigs ?? {}) as any[]) if (!c.Secure) o += `  ${c.Name}\n`;
    for (const c of rc.InsecureRegistryCIDRs ?? []) o += `  ${c}\n`;
  }
  if (rc?.Mirrors?.length) {
    o += ' Registry Mirrors:\n';
    for (const m of rc.Mirrors) o += `  ${m}\n`;
  }
  o += fprintln(' Live Restore Enabled:', !!i.LiveRestoreEnabled);
  if (i.ProductLicense) o += fprintln(' Product License:', i.ProductLicense);
  if (i.DefaultAddressPools?.length) {
    o += ' Default Address Pools:\n';
    for (const p of i.DefaultAddressPools) o += `   Base: ${p.Base}, Size: ${p.Size}\n`;
  }
  o += '\n';
  cli.out(o);
  for (const w of i.Warnings ?? []) cli.err(w + '\n');
}

function rfc3339NanoFixed(nanos: bigint): string {
  const ms = Number(nanos / 1_000_000n);
  const frac = String(nanos % 1_000_000_000n).padStart(9, '0');
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const local = new Date(ms + off * 60000);
  const base = local.toISOString().slice(0, 19);
  const tz =
    off === 0
      ? 'Z'
      : `${off > 0 ? '+' : '-'}${String(Math.trunc(Math.abs(off) / 60)).padStart(2, '0')}:${String(Math.abs(off) % 60).padStart(2, '0')}`;
  return `${base}.${frac}${tz}`;
}

export async function events(cli: Cli, opts: Record<string, any>): Promise<void> {
  let tmpl: Template | undefined;
  if (opts.format) tmpl = new Template(finalFormat(opts.format));
  const res = await cli.client.request('GET', '/events', {
    query: {
      since: opts.since ? parseTimestamp(opts.since) : undefined,
      until: opts.until ? parseTimestamp(opts.until) : undefined,
      filters: filtersJson(opts.filter),
    },
  });
  for await (const line of cli.client.lines(res)) {
    const ev = JSON.parse(line);
    // timeNano exceeds 2^53: take its digits from the text, not from the parsed double
    const nano = /"timeNano":\s*(\d+)/.exec(line)?.[1];
    if (tmpl) {
      cli.out(tmpl.execute(ev) + '\n');
      continue;
    }
    let text = '';
    if (nano && nano !== '0') text += `${rfc3339NanoFixed(BigInt(nano))} `;
    else if (ev.time) text += `${rfc3339NanoFixed(BigInt(ev.time) * 1_000_000_000n)} `;
    text += `${ev.Type} ${ev.Action} ${ev.Actor?.ID ?? ''}`;
    const attrs = ev.Actor?.Attributes ?? {};
    const keys = Object.keys(attrs).sort();
    if (keys.length) text += ` (${keys.map((k) => `${k}=${attrs[k]}`).join(', ')})`;
    cli.out(text + '\n');
  }
}

export async function df(cli: Cli, opts: Record<string, any>): Promise<void> {
  if (opts.verbose) throw new StatusError(1, 'berth system df: --verbose is not supported yet');
  const d = await cli.client.get('/system/df');
  const imgs: any[] = d.Images ?? [];
  const ctrs: any[] = d.Containers ?? [];
  const vols: any[] = d.Volumes ?? [];
  const cache: any[] = d.BuildCache ?? [];
  const pct = (rec: number, total: number) =>
    total > 0 ? `${humanSize(rec)} (${Math.trunc((rec * 100) / total)}%)` : humanSize(rec);
  const imgTotal: number = d.LayersSize ?? 0;
  let imgUsed = 0;
  for (const i of imgs)
    if (i.Containers && i.Size !== -1 && i.SharedSize !== -1) imgUsed += i.Size - (i.SharedSize ?? 0);
  const active = (c: any) => ['running', 'paused', 'restarting'].includes(c.State);
  const ctrSize = ctrs.reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const ctrRec = ctrs.filter((c) => !active(c)).reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const volSize = vols.reduce((a, v) => a + (v.UsageData?.Size > 0 ? v.UsageData.Size : 0), 0);
  const volRec = vols
    .filter((v) => !(v.UsageData?.RefCount > 0))
    .reduce((a, v) => a + (v.UsageData?.Size > 0 ? v.UsageData.Size : 0), 0);
  const cacheSize = cache.filter((c) => !c.Shared).reduce((a, c) => a + (c.Size ?? 0), 0);
  const cacheRec = cache.filter((c) => !c.InUse && !c.Shared).reduce((a, c) => a + (c.Size ?? 0), 0);
  const rows = [
    row({
      Type: 'Images',
      TotalCount: String(imgs.length),
      Active: String(imgs.filter((i) => i.Containers > 0).length),
      Size: humanSize(imgTotal),
      Reclaimable: pct(imgTotal - imgUsed, imgTotal),
    }),
    row({
      Type: 'Containers',
      TotalCount: String(ctrs.length),
      Active: String(ctrs.filter(active).length),
      Size: humanSize(ctrSize),
      Reclaimable: pct(ctrRec, ctrSize),
    }),
    row({
      Type: 'Local Volumes',
      TotalCount: String(vols.length),
      Active: String(vols.filter((v) => v.UsageData?.RefCount > 0).length),
      Size: humanSize(volSize),
      Reclaimable: pct(volRec, volSize),
    }),
    row({
      Type: 'Build Cache',
      TotalCount: String(cache.length),
      Active: String(cache.filter((c) => c.InUse).length),
      Size: humanSize(cacheSize),
      Reclaimable: humanSize(cacheRec),
    }),
  ];
  let format = opts.format || 'table';
  if (format === 'table')
    format = 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}';
  cli.out(
    renderRows(format, rows, {
      Type: 'TYPE',
      TotalCount: 'TOTAL',
      Active: 'ACTIVE',
      Size: 'SIZE',
      Reclaimable: 'RECLAIMABLE',
    }),
  );
  void isTable;
}

// ---------- login / logout ----------

function writeConfig(cli: Cli, cfg: Record<string, any>): void {
  const file = path.join(cli.configDir, 'config.json');
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(cfg, null, '\t') + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

function serverKey(server: string | undefined): string {
  if (!server) return INDEX_SERVER;
  let s = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (s === 'docker.io' || s === 'index.docker.io' || s === 'registry-1.docker.io') s = INDEX_SERVER;
  return s;
}

async function readLine(prompt: string, hidden: boolean): Promise<string> {
  process.stderr.write(prompt);
  const stdin = process.stdin;
  if (hidden && stdin.isTTY) stdin.setRawMode(true);
  return new Promise((resolve) => {
    let buf = '';
    const onData = (b: Buffer) => {
      const s = b.toString();
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') {
          stdin.removeListener('data', onData);
          if (hidden && stdin.isTTY) {
            stdin.setRawMode(false);
            process.stderr.write('\n');
          }
          stdin.pause();
          resolve(buf);
          return;
        }
        if (ch === '\u0003') process.exit(130);
        buf += ch;
      }
    };
    stdin.on('data', onData);
    stdin.once('end', () => resolve(buf));
    stdin.resume();
  });
}

export async function login(cli: Cli, server: string | undefined, opts: Record<string, any>): Promise<void> {
  const key = serverKey(server);
  let username: string | undefined = opts.username;
  let password: string | undefined = opts.password;
  if (password && opts.passwordStdin)
    throw new StatusError(1, '--password and --password-stdin are mutually exclusive');
  if (opts.passwordStdin) {
    if (!username) throw new StatusError(1, 'Must provide --username with --password-stdin');
    const chunks: Buffer[] = [];
    for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
    password = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/[\r\n]+$/, '');
  } else if (password) cli.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  if (!username) username = (await readLine('Username: ', false)).trim();
  if (!username) throw new StatusError(1, 'Error: Non-null Username Required');
  if (!password) password = await readLine('Password: ', true);
  if (!password) throw new StatusError(1, 'Error: Password Required');
  const r = await cli.client.post<{ Status?: string; IdentityToken?: string }>('/auth', undefined, {
    username,
    password,
    serveraddress: key,
  });
  const cfg = readConfig(cli);
  cfg.auths ??= {};
  cfg.auths[key] = r.IdentityToken
    ? { auth: Buffer.from(`${username}:`).toString('base64'), identitytoken: r.IdentityToken }
    : { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  writeConfig(cli, cfg);
  cli.out(`${r.Status || 'Login Succeeded'}\n`);
}

export async function logout(cli: Cli, server: string | undefined): Promise<void> {
  const key = serverKey(server);
  const cfg = readConfig(cli);
  const shown = server ?? INDEX_SERVER;
  if (!cfg.auths?.[key]) {
    cli.out(`Not logged in to ${shown}\n`);
    return;
  }
  cli.out(`Removing login credentials for ${shown}\n`);
  delete cfg.auths[key];
  writeConfig(cli, cfg);
}

export function readJsonFile(p: string): unknown {
  return JSON.parse(readFileSync(p, 'utf8'));
}
