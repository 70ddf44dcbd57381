/**
 * Port publishing requests (`-p`, `-P`) turned into concrete mappings: host address, host port
 * (an ephemeral one when none was given), protocol. A host port is refused when another mapping
 * of this daemon holds it or when a host process has it bound.
 */
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import type { ContainerRecord, PortBinding } from '../model/container.js';
import { invalid, systemError } from '../util/errors.js';
import { isIPv4 } from './ipam.js';
import type { PortMapping } from './types.js';

export interface PortRequest {
  proto: 'tcp' | 'udp';
  containerPort: number;
  hostIp: string;
  /** Inclusive host port range; [0, 0] = ephemeral. */
  hostPorts: [number, number];
}

function parsePortKey(key: string): { port: number; proto: 'tcp' | 'udp' } | undefined {
  const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/.exec(key);
  if (!m) throw invalid(`invalid port specification: "${key}"`);
  if (m[2] === 'sctp') return undefined; // not supported by berth's NAT; ignored as Docker does without sctp
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw invalid(`invalid port specification: "${key}"`);
  return { port, proto: (m[2] ?? 'tcp') as 'tcp' | 'udp' };
}

function parseHostPort(hp: string | undefined): [number, number] {
  // Empty or "0": any free port (Docker; Testcontainers asks for "0").
  if (!hp || hp === '0') return [0, 0];
  const m = /^(\d+)(?:-(\d+))?$/.exec(hp);
  if (!m) throw invalid(`invalid hostPort: ${hp}`);
  const lo = Number(m[1]);
  const hi = m[2] ? Number(m[2]) : lo;
  if (lo < 1 || hi > 65535 || hi < lo) throw invalid(`invalid hostPort: ${hp}`);
  return [lo, hi];
}

/** What the container asks for: explicit bindings, plus every exposed port with `-P`. */
export function portRequests(record: ContainerRecord): PortRequest[] {
  const out: PortRequest[] = [];
  const bindings: Record<string, PortBinding[] | null> = { ...(record.HostConfig.PortBindings ?? {}) };
  if (record.HostConfig.PublishAllPorts) {
    for (const key of Object.keys(record.Config.ExposedPorts ?? {}))
      if (!bindings[key]?.length) bindings[key] = [{ HostIp: '', HostPort: '' }];
  }
  for (const [key, list] of Object.entries(bindings)) {
    const p = parsePortKey(key);
    if (!p) continue;
    for (const b of list ?? []) {
      const hostIp = b.HostIp || '0.0.0.0';
      if (hostIp.includes(':')) continue; // IPv6 host addresses: not supported (IPv4-only NAT)
      if (!isIPv4(hostIp)) throw invalid(`invalid IP address: ${hostIp}`);
      out.push({ proto: p.proto, containerPort: p.port, hostIp, hostPorts: parseHostPort(b.HostPort) });
    }
  }
  return out;
}

/** Validates a create request's port specs without allocating. */
export function checkPortRequests(record: ContainerRecord): void {
  portRequests(record);
}

async function ephemeralRange(): Promise<[number, number]> {
  const text = await fs.readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999');
  const [lo, hi] = text.trim().split(/\s+/).map(Number);
  return [lo || 32768, hi || 60999];
}

/** True when nothing on the host holds the port (a probe bind, closed at once). */
export function hostPortFree(proto: 'tcp' | 'udp', ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (proto === 'tcp') {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ host: ip, port, exclusive: true }, () => srv.close(() => resolve(true)));
    } else {
      const s = dgram.createSocket('udp4');
      s.once('error', () => {
        s.close();
        resolve(false);
      });
      s.bind({ address: ip, port, exclusive: true }, () => s.close(() => resolve(true)));
    }
  });
}

function clash(
  a: { proto: string; hostIp: string; hostPort: number },
  b: { proto: string; hostIp: string; hostPort: number },
): boolean {
  return (
    a.proto === b.proto &&
    a.hostPort === b.hostPort &&
    (a.hostIp === b.hostIp || a.hostIp === '0.0.0.0' || b.hostIp === '0.0.0.0')
  );
}

/** Picks host ports for the requests; `taken` holds every mapping of this daemon. */
export async function allocatePorts(
  reqs: PortRequest[],
  taken: PortMapping[],
  target: { ip: string; ifname: string },
): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  const [elo, ehi] = await ephemeralRange();
  for (const r of reqs) {
    const ephemeral = r.hostPorts[0] === 0;
    let lo = r.hostPorts[0];
    let hi = r.hostPorts[1];
    let start = lo;
    if (ephemeral) {
      lo = elo;
      hi = ehi;
      start = lo + Math.floor(Math.random() * (hi - lo + 1));
    }
    const n = hi - lo + 1;
    let chosen: number | undefined;
    for (let i = 0; i < n; i++) {
      const port = lo + ((start - lo + i) % n);
      const m = { proto: r.proto, hostIp: r.hostIp, hostPort: port };
      if ([...taken, ...out].some((t) => clash(t, m))) continue;
      if (!(await hostPortFree(r.proto, r.hostIp, port))) continue;
      chosen = port;
      break;
    }
    if (chosen === undefined) {
      if (ephemeral) throw systemError(`no free host port for ${r.containerPort}/${r.proto}`);
      const shown = lo === hi ? `${lo}` : `${lo}-${hi}`;
      throw systemError(
        `driver failed programming external connectivity: Bind for ${r.hostIp}:${shown} failed: port is already allocated`,
      );
    }
    out.push({
      proto: r.proto,
      hostIp: r.hostIp,
      hostPort: chosen,
      containerPort: r.containerPort,
      containerIp: target.ip,
      ifname: target.ifname,
    });
  }
  return out;
}

/** `NetworkSettings.Ports`: every exposed or published port, with its host bindings or null. */
export function portsView(
  record: ContainerRecord,
  mappings: PortMapping[],
): Record<string, PortBinding[] | null> {
  const view: Record<string, PortBinding[] | null> = {};
  for (const key of Object.keys(record.Config.ExposedPorts ?? {}))
    view[key.includes('/') ? key : `${key}/tcp`] = null;
  for (const key of Object.keys(record.HostConfig.PortBindings ?? {}))
    view[key.includes('/') ? key : `${key}/tcp`] ??= null;
  for (const m of mappings) {
    const key = `${m.containerPort}/${m.proto}`;
    const list = view[key] ?? [];
    list.push({ HostIp: m.hostIp, HostPort: String(m.hostPort) });
    view[key] = list;
  }
  return view;
}
