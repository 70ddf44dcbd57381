/** Numbers in query strings, checked and bounded before they reach a timer or a syscall. */
import { invalid } from '../../util/errors.js';

/** The longest wait a Node timer can hold (≈ 24.8 days); beyond it setTimeout fires at once. */
export const MAX_TIMER_SECONDS = Math.floor(0x7fffffff / 1000);

/**
 * A stop/restart timeout in whole seconds (`t`, or `timeout` from old clients), as dockerd reads it
 * with strconv.Atoi: an integer or a 400. -1 waits for ever, and so does anything a timer cannot
 * hold (a timeout of a thousand years means the same).
 */
export function qTimeoutSeconds(q: URLSearchParams): number | undefined {
  for (const key of ['t', 'timeout']) {
    const v = q.get(key);
    if (v === null || v === '') continue;
    if (!/^[+-]?\d+$/.test(v))
      throw invalid(`invalid value for ${key}: strconv.Atoi: parsing "${v}": invalid syntax`);
    const n = Number(v);
    if (n < -1) throw invalid(`invalid value for ${key}: ${v}: must be -1 or more`);
    return n > MAX_TIMER_SECONDS ? -1 : n;
  }
  return undefined;
}

/** A terminal dimension (`h`, `w` of resize): a whole number a `struct winsize` can hold. */
export function qTermSize(q: URLSearchParams, key: 'h' | 'w'): number {
  const v = q.get(key);
  if (v === null || v === '') return 0;
  if (!/^\d+$/.test(v) || Number(v) > 0xffff) throw invalid(`invalid value for ${key}: ${v}`);
  return Number(v);
}
