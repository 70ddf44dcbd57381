/** `network` and `volume` commands. */
import { ApiError } from '../../client/client.js';
import { type Cli, errorMessage, forEach, keyValues, StatusError } from '../cli.js';
import { renderRows, row } from '../formatter.js';
import { goTimeStringFromRfc3339, humanSize, truncateId } from '../units.js';
import { confirm, filtersJson, inspectObjects } from './container.js';

const natural = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

export async function networkCreate(cli: Cli, name: string, opts: Record<string, any>): Promise<void> {
  const subnets: string[] = opts.subnet ?? [];
  const gateways: string[] = opts.gateway ?? [];
  const ranges: string[] = opts.ipRange ?? [];
  if (gateways.length > subnets.length)
    throw new StatusError(1, 'every ip-range or gateway must have a corresponding subnet');
  const config = subnets.map((s, i) => ({
    Subnet: s,
    ...(ranges[i] ? { IPRange: ranges[i] } : {}),
    ...(gateways[i] ? { Gateway: gateways[i] } : {}),
    ...(opts.auxAddress?.length && i === 0 ? { AuxiliaryAddresses: keyValues(opts.auxAddress) } : {}),
  }));
  const body: Record<string, any> = {
    Driver: opts.driver ?? 'bridge',
    Scope: opts.scope ?? '',
    EnableIPv4: opts.ipv4 === false ? false : undefined,
    EnableIPv6: opts.ipv6 ? true : undefined,
    IPAM: { Driver: opts.ipamDriver ?? 'default', Options: keyValues(opts.ipamOpt), Config: config },
    Internal: !!opts.internal,
    Attachable: !!opts.attachable,
    Ingress: false,
    ConfigOnly: false,
    ConfigFrom: null,
    Options: keyValues(opts.opt),
    Labels: keyValues(opts.label),
    Name: name,
  };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  const r = await cli.client.post<{ Id: string; Warning?: string }>('/networks/create', undefined, body);
  if (r.Warning) cli.err(`WARNING: ${r.Warning}\n`);
  cli.out(r.Id + '\n');
}

export async function networkLs(cli: Cli, opts: Record<string, any>): Promise<void> {
  const list = await cli.client.get<any[]>('/networks', { filters: filtersJson(opts.filter) });
  list.sort((a, b) => natural(a.Name, b.Name));
  const trunc = opts.trunc !== false;
  const rows = list.map((n) => {
    const labels: Record<string, string> = n.Labels ?? {};
    return row({
      ID: trunc ? truncateId(n.Id) : n.Id,
      Name: n.Name,
      Driver: n.Driver,
      Scope: n.Scope,
      IPv4: String(n.EnableIPv4 ?? true),
      IPv6: String(!!n.EnableIPv6),
      Internal: String(!!n.Internal),
      Labels: Object.entries(labels)
        .map(([k, v]) => `${k}=${v}`)
        .sort()
        .join(','),
      Label: (k: string) => labels[k] ?? '',
      CreatedAt: goTimeStringFromRfc3339(n.Created ?? ''),
    });
  });
  let format = opts.format || 'table';
  if (opts.quiet) format = '{{.ID}}';
  else if (format === 'table') format = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';
  cli.out(
    renderRows(format, rows, {
      ID: 'NETWORK ID',
      Name: 'NAME',
      Driver: 'DRIVER',
      Scope: 'SCOPE',
      IPv4: 'IPV4',
      IPv6: 'IPV6',
      Internal: 'INTERNAL',
      Labels: 'LABELS',
      CreatedAt: 'CREATED AT',
    }),
  );
}

export async function networkInspect(cli: Cli, names: string[], opts: Record<string, any>): Promise<void> {
  await inspectObjects(cli, names, opts.format, (n) =>
    cli.client.get(`/networks/${n}`, { verbose: opts.verbose || undefined }),
  );
}

export async function networkRm(cli: Cli, names: string[], opts: Record<string, any>): Promise<void> {
  let status = 0;
  for (const n of names) {
    try {
      await cli.client.status('DELETE', `/networks/${n}`);
      cli.out(n + '\n');
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (opts.force && err.status === 404) continue;
      cli.err(errorMessage(err) + '\n');
      status = 1;
    }
  }
  if (status) throw new StatusError(status, `exit status ${status}`);
}

export async function networkPrune(cli: Cli, opts: Record<string, any>): Promise<void> {
  if (
    !opts.force &&
    !(await confirm(cli, 'WARNING! This will remove all custom networks not used by at least one container.'))
  )
    return;
  const r = await cli.client.post<{ NetworksDeleted?: string[] | null }>('/networks/prune', {
    filters: filtersJson(opts.filter),
  });
  if (r.NetworksDeleted?.length)
    cli.out('Deleted Networks:\n' + r.NetworksDeleted.map((n) => n + '\n').join(''));
}

export async function networkConnect(
  cli: Cli,
  network: string,
  container: string,
  opts: Record<string, any>,
): Promise<void> {
  const ipam: Record<string, string> = {};
  if (opts.ip) ipam.IPv4Address = opts.ip;
  if (opts.ip6) ipam.IPv6Address = opts.ip6;
  await cli.client.status('POST', `/networks/${network}/connect`, {
    body: {
      Container: container,
      EndpointConfig: {
        IPAMConfig: ipam,
        Links: opts.link ?? null,
        Aliases: opts.alias ?? null,
        DriverOpts: opts.driverOpt ? keyValues(opts.driverOpt) : null,
      },
    },
  });
}

export async function networkDisconnect(
  cli: Cli,
  network: string,
  container: string,
  opts: Record<string, any>,
): Promise<void> {
  await cli.client.status('POST', `/networks/${network}/disconnect`, {
    body: { Container: container, Force: !!opts.force },
  });
}

// ---------- volumes ----------

export async function volumeCreate(
  cli: Cli,
  name: string | undefined,
  opts: Record<string, any>,
): Promise<void> {
  if (name && opts.name && name !== opts.name)
    throw new StatusError(
      1,
      'conflicting options: cannot specify a volume-name through both --name and as a positional arg',
    );
  const v = await cli.client.post('/volumes/create', undefined, {
    Driver: opts.driver ?? 'local',
    DriverOpts: keyValues(opts.opt),
    Labels: keyValues(opts.label),
    Name: name ?? opts.name ?? '',
  });
  cli.out(v.Name + '\n');
}

export async function volumeLs(cli: Cli, opts: Record<string, any>): Promise<void> {
  const r = await cli.client.get<{ Volumes?: any[] | null; Warnings?: string[] | null }>('/volumes', {
    filters: filtersJson(opts.filter),
  });
  const list = [...(r.Volumes ?? [])].sort((a, b) => natural(a.Name, b.Name));
  const rows = list.map((v) => {
    const labels: Record<string, string> = v.Labels ?? {};
    return row({
      Name: v.Name,
      Driver: v.Driver,
      Scope: v.Scope,
      Mountpoint: v.Mountpoint,
      Labels: Object.entries(labels)
        .map(([k, x]) => `${k}=${x}`)
        .sort()
        .join(','),
      Label: (k: string) => labels[k] ?? '',
      Links: v.UsageData ? String(v.UsageData.RefCount) : 'N/A',
      Size: v.UsageData && v.UsageData.Size !== -1 ? humanSize(v.UsageData.Size) : 'N/A',
      Availability: 'N/A',
      Group: 'N/A',
      Status: 'N/A',
    });
  });
  let format = opts.format || 'table';
  if (opts.quiet) format = '{{.Name}}';
  else if (format === 'table') format = 'table {{.Driver}}\t{{.Name}}';
  for (const w of r.Warnings ?? []) cli.err(`${w}\n`);
  cli.out(
    renderRows(format, rows, {
      Name: 'VOLUME NAME',
      Driver: 'DRIVER',
      Scope: 'SCOPE',
      Mountpoint: 'MOUNTPOINT',
      Labels: 'LABELS',
      Links: 'LINKS',
      Size: 'SIZE',
    }),
  );
}

export async function volumeInspect(cli: Cli, names: string[], opts: Record<string, any>): Promise<void> {
  await inspectObjects(cli, names, opts.format, (n) => cli.client.get(`/volumes/${n}`));
}

export async function volumeRm(cli: Cli, names: string[], opts: Record<string, any>): Promise<void> {
  await forEach(cli, names, async (n) => {
    await cli.client.status('DELETE', `/volumes/${n}`, { query: { force: opts.force || undefined } });
    return n;
  });
}

export async function volumePrune(cli: Cli, opts: Record<string, any>): Promise<void> {
  const warning = opts.all
    ? 'WARNING! This will remove all local volumes not used by at least one container.'
    : 'WARNING! This will remove anonymous local volumes not used by at least one container.';
  if (!opts.force && !(await confirm(cli, warning))) return;
  const filters = [...(opts.filter ?? [])];
  if (opts.all) filters.push('all=true');
  const r = await cli.client.post<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>(
    '/volumes/prune',
    { filters: filtersJson(filters) },
  );
  let out = '';
  if (r.VolumesDeleted?.length)
    out += 'Deleted Volumes:\n' + r.VolumesDeleted.map((n) => n + '\n').join('') + '\n';
  out += `Total reclaimed space: ${humanSize(r.SpaceReclaimed ?? 0)}\n`;
  cli.out(out);
}
