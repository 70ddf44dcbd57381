/** Go's duration text, shared by the CLI (`--health-interval`) and the API (`until` filters). */

/** Go's time.ParseDuration, in milliseconds (`1h30m`, `10s`, `500ms`). */
export function parseGoDuration(s: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let pos = 0;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  if (!s) return undefined;
  if (s === '0') return 0;
  for (;;) {
    m = re.exec(s);
    if (!m) break;
    total += Number(m[1]) * unit[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === s.length && pos > 0 ? total : undefined;
}
