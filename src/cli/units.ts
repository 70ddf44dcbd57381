/** Human-readable sizes, durations, IDs and times as docker's go-units and formatter print them. */

import { parseGoDuration } from '../util/duration.js';

export { parseGoDuration };

const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/** Go's `%.<p>g`. */
export function formatG(n: number, precision: number): string {
  if (n === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  if (exp < -4 || exp >= precision) {
    const [m, e] = n.toExponential(precision - 1).split('e');
    const mant = m!.includes('.') ? m!.replace(/\.?0+$/, '') : m!;
    const ev = Number(e);
    return `${mant}e${ev < 0 ? '-' : '+'}${String(Math.abs(ev)).padStart(2, '0')}`;
  }
  const s = n.toPrecision(precision);
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

function scaled(size: number, base: number, units: string[]): [number, string] {
  let i = 0;
  while (size >= base && i < units.length - 1) {
    size /= base;
    i++;
  }
  return [size, units[i]!];
}

/** units.HumanSizeWithPrecision (decimal, e.g. `4.27MB`). */
export function humanSize(size: number, precision = 4): string {
  const [s, u] = scaled(size, 1000, DECIMAL);
  return formatG(s, precision) + u;
}

/** units.BytesSize (binary, e.g. `23.54GiB`). */
export function bytesSize(size: number): string {
  const [s, u] = scaled(size, 1024, BINARY);
  return formatG(s, 4) + u;
}

/** units.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3600000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3600000 / 24 / 365)} years`;
}

/** stringid.TruncateID: drop the algorithm, keep 12 characters. */
export function truncateId(id: string): string {
  const i = id.indexOf(':');
  const s = i >= 0 ? id.slice(i + 1) : id;
  return s.slice(0, 12);
}

/** formatter.Ellipsis for ASCII-width text. */
export function ellipsis(s: string, max: number): string {
  const rs = [...s];
  if (max <= 0) return '';
  if (rs.length <= max) return s;
  if (max === 1) return rs[0]!;
  return rs.slice(0, max - 1).join('') + '…';
}

/** Go's time.Time.String() for a unix time, in the local zone: `2006-01-02 15:04:05 -0700 MST`. */
export function goTimeString(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  const tz = off === 0 && (process.env.TZ ?? 'UTC').match(/^(UTC|)$/) ? 'UTC' : zoneAbbrev(d);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${sign}${p(Math.trunc(abs / 60))}${p(abs % 60)} ${tz}`;
}

function zoneAbbrev(d: Date): string {
  const m = /\(([^)]+)\)/.exec(d.toString());
  const name = m?.[1] ?? '';
  if (name === 'Coordinated Universal Time') return 'UTC';
  const abbr = name
    .split(' ')
    .map((w) => w[0])
    .join('');
  return abbr || 'UTC';
}

/** Parses docker's `--since`/`--until` values (RFC 3339, unix time, or a duration like `10m`) into unix seconds. */
export function parseTimestamp(value: string, now = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(value)) return value;
  const dur = parseGoDuration(value);
  if (dur !== undefined) {
    const t = (now - dur) / 1000;
    return String(Math.floor(t));
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`failed to parse value as time or duration: "${value}"`);
  const sec = Math.floor(ms / 1000);
  const frac = /\.(\d+)/.exec(value)?.[1];
  return frac ? `${sec}.${frac.padEnd(9, '0').slice(0, 9)}` : String(sec);
}

/** units.RAMInBytes / FromHumanSize for `-m 64m`, `--shm-size`: binary multiples. */
export function ramInBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`invalid size: '${s}'`);
  const mult: Record<string, number> = {
    '': 1,
    k: 1024,
    m: 1024 ** 2,
    g: 1024 ** 3,
    t: 1024 ** 4,
    p: 1024 ** 5,
  };
  return Math.trunc(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

/** Go's time.Time.String() for an RFC 3339 timestamp, keeping its nanoseconds (trailing zeros dropped). */
export function goTimeStringFromRfc3339(s: string): string {
  const ms = Date.parse(s);
  if (!s || Number.isNaN(ms)) return s;
  const frac = (/\.(\d+)/.exec(s)?.[1] ?? '').slice(0, 9).replace(/0+$/, '');
  const base = goTimeString(Math.floor(ms / 1000));
  if (!frac) return base;
  const i = base.indexOf(' ', 11);
  return `${base.slice(0, i)}.${frac}${base.slice(i)}`;
}
