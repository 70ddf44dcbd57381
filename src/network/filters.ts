/** `network ls` and `network prune` filters, as Docker reads them. */
import type { Filters } from '../model/filters.js';
import { invalid } from '../util/errors.js';
import type { NetworkRecord } from './types.js';

const LIST_KEYS = ['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling'];
const PRUNE_KEYS = ['until', 'label', 'label!'];

function checkKeys(filters: Filters, allowed: string[]): void {
  for (const k of filters.keys()) if (!allowed.includes(k)) throw invalid(`invalid filter '${k}'`);
}

/** `label=k` or `label=k=v`. */
function hasLabel(n: NetworkRecord, l: string): boolean {
  const [k, v] = l.split('=', 2);
  return k in n.Labels && (v === undefined || n.Labels[k] === v);
}

/** The `network ls` predicate; `used` holds the networks some container names. */
export function listFilter(f: Filters, used: Set<string>): (n: NetworkRecord) => boolean {
  checkKeys(f, LIST_KEYS);
  const any = (key: string, pred: (v: string) => boolean) => !f.has(key) || f.get(key)!.some(pred);
  return (n) =>
    any('driver', (v) => n.Driver === v) &&
    any('id', (v) => n.Id.startsWith(v)) &&
    any('name', (v) => n.Name.includes(v)) &&
    any('scope', (v) => v === n.Scope) &&
    any('type', (v) => (v === 'builtin' ? !!n.predefined : v === 'custom' ? !n.predefined : false)) &&
    any('dangling', (v) => (['true', '1'].includes(v) ? !n.predefined && !used.has(n.Id) : n.predefined || used.has(n.Id))) &&
    (f.get('label') ?? []).every((l) => hasLabel(n, l));
}

/** The `network prune` predicate for networks nobody uses (`until`, `label`, `label!`). */
export function pruneFilter(f: Filters): (n: NetworkRecord) => boolean {
  checkKeys(f, PRUNE_KEYS);
  const until = f.get('until')?.[0];
  const untilMs = until ? (/^\d+(\.\d+)?$/.test(until) ? Number(until) * 1000 : Date.parse(until)) : undefined;
  return (n) =>
    !(untilMs !== undefined && Date.parse(n.Created) >= untilMs) &&
    (f.get('label') ?? []).every((l) => hasLabel(n, l)) &&
    !(f.get('label!') ?? []).some((l) => hasLabel(n, l));
}
