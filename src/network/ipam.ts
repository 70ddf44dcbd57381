/**
 * IPv4 address management: CIDR arithmetic, subnets carved from address pools, and addresses
 * leased inside a subnet (optionally limited to an `--ip-range`). Pure logic: the caller keeps
 * the leases in its persisted state and passes them in.
 */
import { invalid } from '../util/errors.js';

export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

export function ipToNum(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw invalid(`invalid IP address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw invalid(`invalid IP address: ${ip}`);
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}

export function numToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIPv4(s: string): boolean {
  try {
    ipToNum(s);
    return true;
  } catch {
    return false;
  }
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `a.b.c.d/n`; `strict` rejects host bits set (as `--subnet` does). */
export function parseCidr(s: string, strict = false): Cidr & { addr: number } {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s.trim());
  if (!m || Number(m[2]) > 32) throw invalid(`invalid CIDR address: ${s}`);
  if (s.includes(':')) throw invalid(`IPv6 is not supported: ${s}`);
  const addr = ipToNum(m[1]);
  const prefix = Number(m[2]);
  const base = (addr & maskOf(prefix)) >>> 0;
  if (strict && base !== addr) throw invalid(`invalid subnet ${s}: it should be ${numToIp(base)}/${prefix}`);
  return { base, prefix, addr };
}

export function formatCidr(c: Cidr): string {
  return `${numToIp(c.base)}/${c.prefix}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function contains(c: Cidr, ip: number): boolean {
  return (ip & maskOf(c.prefix)) >>> 0 === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & maskOf(p)) >>> 0 === (b.base & maskOf(p)) >>> 0;
}

/**
 * The first subnet of `size` bits prefix inside the pools that overlaps none of `taken`.
 * Pools are walked in order, as dockerd's default-address-pools are.
 */
export function carveSubnet(pools: { base: string; size: number }[], taken: Cidr[]): Cidr | undefined {
  for (const pool of pools) {
    const p = parseCidr(pool.base);
    if (!Number.isInteger(pool.size) || pool.size < p.prefix || pool.size > 30) continue;
    const step = 2 ** (32 - pool.size);
    const count = 2 ** (pool.size - p.prefix);
    for (let i = 0; i < count; i++) {
      const cand = { base: (p.base + i * step) >>> 0, prefix: pool.size };
      if (!taken.some((t) => overlaps(t, cand))) return cand;
    }
  }
  return undefined;
}

export interface SubnetPlan {
  subnet: Cidr;
  gateway: number;
  /** Where dynamic addresses come from (the subnet unless `--ip-range`). */
  range: Cidr;
}

/** Checks `--subnet/--gateway/--ip-range` together, as `network create` does. */
export function planSubnet(subnet: string, gateway?: string, ipRange?: string): SubnetPlan {
  const s = parseCidr(subnet, true);
  if (s.prefix > 30) throw invalid(`subnet ${subnet} is too small: at least a /30 is needed`);
  let gw = s.base + 1;
  if (gateway) {
    gw = ipToNum(gateway);
    if (!contains(s, gw) || gw === s.base || gw === s.base + size(s) - 1)
      throw invalid(`no matching subnet for gateway ${gateway}`);
  }
  let range: Cidr = s;
  if (ipRange) {
    range = parseCidr(ipRange, true);
    if (range.prefix < s.prefix || !contains(s, range.base))
      throw invalid(`no matching subnet for range ${ipRange}`);
  }
  return { subnet: s, gateway: gw >>> 0, range };
}

/** Picks the lowest free address of the range (never the network, broadcast or gateway address). */
export function allocateAddress(plan: SubnetPlan, leased: Set<number>): number | undefined {
  const first = plan.subnet.base + 1;
  const last = plan.subnet.base + size(plan.subnet) - 2;
  const lo = Math.max(first, plan.range.base);
  const hi = Math.min(last, plan.range.base + size(plan.range) - 1);
  for (let ip = lo; ip <= hi; ip++) {
    if (ip !== plan.gateway && !leased.has(ip)) return ip >>> 0;
  }
  return undefined;
}

/** Checks a fixed address (`--ip`) against the subnet and the leases. */
export function checkFixedAddress(plan: SubnetPlan, ip: string, leased: Set<number>): number {
  const n = ipToNum(ip);
  if (!contains(plan.subnet, n))
    throw invalid(`Invalid address ${ip}: It does not belong to any of this network's subnets`);
  if (
    n === plan.subnet.base ||
    n === plan.subnet.base + size(plan.subnet) - 1 ||
    n === plan.gateway ||
    leased.has(n)
  )
    throw invalid(`Address already in use: ${ip}`);
  return n;
}

/** A locally administered MAC derived from the address, as Docker does (02:42:<ip>). */
export function macFor(ip: number): string {
  return [
    '02',
    '42',
    ...[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0')),
  ].join(':');
}
