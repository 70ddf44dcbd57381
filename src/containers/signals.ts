/** Signal names and numbers as Docker accepts them: `TERM`, `SIGTERM`, `term`, `15`. */
import { constants } from 'node:os';
import { invalid } from '../util/errors.js';

export function signalNumber(sig: string | number): number {
  if (typeof sig === 'number') return sig;
  const s = sig.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw invalid(`Invalid signal: ${sig}`);
    return n;
  }
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  const rt = /^SIGRTMIN(\+(\d+))?$/.exec(name);
  if (rt) return 34 + Number(rt[2] ?? 0);
  const n = (constants.signals as Record<string, number>)[name];
  if (!n) throw invalid(`Invalid signal: ${sig}`);
  return n;
}
