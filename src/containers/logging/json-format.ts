/**
 * Docker's json-file line, byte for byte: `{"log":"…","stream":"stdout","time":"…"}\n`, the log
 * escaped as dockerd escapes it (`<`, `>`, `&` as \u003c…, control bytes as \u00XX except \n and
 * \r, invalid UTF-8 as \ufffd, U+2028/9 escaped) and the time in RFC 3339 with nanoseconds, UTC,
 * trailing zeros of the fraction dropped (Go's RFC3339Nano).
 */

const HEX = '0123456789abcdef';
const HEAD = Buffer.from('{"log":"');

/** Bytes one entry needs at most: every payload byte may become `\u00XX`. */
export function maxEntryBytes(payloadLength: number, suffix: Buffer): number {
  return payloadLength * 6 + HEAD.length + suffix.length;
}

/**
 * What follows the escaped payload: the `\n` ending a whole line (a partial chunk has none), the
 * stream and the time. Built once per time stamp (conmon stamps a whole read with one).
 */
export function entrySuffix(stderr: boolean, time: string, newline: boolean, attrs?: string): Buffer {
  const a = attrs ? `,"attrs":${attrs}` : '';
  return Buffer.from(`${newline ? '\\n' : ''}","stream":"${stderr ? 'stderr' : 'stdout'}"${a},"time":"${time}"}\n`, 'utf8');
}

/**
 * Writes one entry into `out` at `o` (room for maxEntryBytes must be there) and returns the new
 * offset.
 */
export function writeEntry(out: Buffer, o: number, src: Buffer, start: number, end: number, suffix: Buffer): number {
  for (let k = 0; k < 8; k++) out[o + k] = HEAD[k];
  o = escapeInto(out, o + 8, src, start, end);
  return o + suffix.copy(out, o);
}

/** Copies short runs byte by byte: cheaper than a native call for a few bytes. */
function copyRun(s: Buffer, from: number, to: number, out: Buffer, o: number): number {
  const n = to - from;
  if (n > 48) return s.copy(out, o, from, to);
  for (let k = 0; k < n; k++) out[o + k] = s[from + k];
  return n;
}

/** 1 for the bytes written as they are: printable ASCII but `\`, `"`, `<`, `>`, `&`. */
const PLAIN = new Uint8Array(256);
for (let b = 0x20; b < 0x80; b++) PLAIN[b] = b === 0x5c || b === 0x22 || b === 0x3c || b === 0x3e || b === 0x26 ? 0 : 1;

function escapeInto(out: Buffer, o: number, s: Buffer, i: number, end: number): number {
  let run = i;
  while (i < end) {
    const b = s[i];
    if (PLAIN[b] === 1) {
      i++;
      continue;
    }
    if (b < 0x80) {
      if (run < i) o += copyRun(s, run, i, out, o);
      out[o++] = 0x5c;
      if (b === 0x5c || b === 0x22) out[o++] = b;
      else if (b === 0x0a) out[o++] = 0x6e;
      else if (b === 0x0d) out[o++] = 0x72;
      else o += out.write(`u00${HEX[b >> 4]}${HEX[b & 15]}`, o, 'latin1');
      run = ++i;
      continue;
    }
    const size = runeSize(s, i, end);
    if (size === 0) {
      if (run < i) o += s.copy(out, o, run, i);
      o += out.write('\\ufffd', o, 'latin1');
      run = ++i;
      continue;
    }
    // U+2028 / U+2029: E2 80 A8 / E2 80 A9.
    if (size === 3 && b === 0xe2 && s[i + 1] === 0x80 && (s[i + 2] === 0xa8 || s[i + 2] === 0xa9)) {
      if (run < i) o += s.copy(out, o, run, i);
      o += out.write(s[i + 2] === 0xa8 ? '\\u2028' : '\\u2029', o, 'latin1');
      i += 3;
      run = i;
      continue;
    }
    i += size;
  }
  if (run < end) o += copyRun(s, run, end, out, o);
  return o;
}

/** Length of the valid UTF-8 sequence at i (Go's utf8.DecodeRune acceptance), 0 if invalid. */
function runeSize(s: Buffer, i: number, end: number): number {
  const b = s[i];
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < end && s[i + k] >= lo && s[i + k] <= hi;
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    const lo = b === 0xe0 ? 0xa0 : 0x80;
    const hi = b === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    const lo = b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** `…T09:28:22.123450000Z` (as conmon or Docker writes it) → Go's RFC3339Nano in UTC: `…T09:28:22.12345Z`. */
export function goTime(utc19: string, fraction: string): string {
  let f = fraction;
  let n = f.length;
  while (n > 0 && f.charCodeAt(n - 1) === 0x30) n--;
  if (n === 0) return `${utc19}Z`;
  if (n !== f.length) f = f.slice(0, n);
  return `${utc19}.${f}Z`;
}

/** A json-file time → the fixed 9-digit form `docker logs -t` prints. */
export function fixedTime(t: string): string {
  if (t.length === 30) return t;
  const dot = t.indexOf('.', 19);
  const frac = dot < 0 ? '' : t.slice(dot + 1, t.length - 1);
  return `${t.slice(0, 19)}.${frac.padEnd(9, '0')}Z`;
}

/** Seconds and nanoseconds of a json-file time (UTC, `Z`); undefined when it is not one. */
export function timeOf(t: string): { s: number; ns: number } | undefined {
  if (t.length < 20 || t.charCodeAt(t.length - 1) !== 0x5a) return undefined;
  const s = secondsOf(t.slice(0, 19));
  if (Number.isNaN(s)) return undefined;
  const dot = t.indexOf('.', 19);
  const ns = dot < 0 ? 0 : Number(t.slice(dot + 1, t.length - 1).padEnd(9, '0').slice(0, 9));
  return { s, ns };
}

let lastPrefix = '';
let lastSeconds = 0;
/** Epoch seconds of `YYYY-MM-DDTHH:MM:SS` (UTC), cached for runs of lines within one second. */
function secondsOf(prefix: string): number {
  if (prefix === lastPrefix) return lastSeconds;
  const v = Date.parse(`${prefix}Z`) / 1000;
  lastPrefix = prefix;
  lastSeconds = v;
  return v;
}
