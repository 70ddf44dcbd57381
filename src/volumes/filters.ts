/** `volume ls` and `volume prune` filters, as Docker reads them. */
import type { Filters } from '../model/filters.js';
import { invalid } from '../util/errors.js';

interface Listed {
  Name: string;
  Driver: string;
  Labels: Record<string, string>;
}

function checkKeys(filters: Filters, allowed: string[]): void {
  for (const k of filters.keys()) if (!allowed.includes(k)) throw invalid(`invalid filter '${k}'`);
}

/** A boolean filter's last value (`1`, `true`, `0`, `false`…); anything else is refused. */
function flag(filters: Filters, key: string): boolean | undefined {
  let out: boolean | undefined;
  for (const v of filters.get(key) ?? []) {
    if (['1', 'true', 'True', 'TRUE'].includes(v)) out = true;
    else if (['0', 'false', 'False', 'FALSE'].includes(v)) out = false;
    else throw invalid(`invalid filter '${key}=${v}'`);
  }
  return out;
}

/** `label=k` or `label=k=v`. */
function labelMatch(labels: Record<string, string>, f: string): boolean {
  const i = f.indexOf('=');
  if (i < 0) return f in labels;
  return labels[f.slice(0, i)] === f.slice(i + 1);
}

/** The `volume ls` predicate, given how many containers use the volume. */
export function listFilter(f: Filters): (v: Listed, users: number) => boolean {
  checkKeys(f, ['dangling', 'driver', 'label', 'name']);
  const dangling = flag(f, 'dangling');
  const drivers = f.get('driver') ?? [];
  const names = f.get('name') ?? [];
  const labels = f.get('label') ?? [];
  return (v, users) =>
    (dangling === undefined || (users === 0) === dangling) &&
    (!drivers.length || drivers.includes(v.Driver)) &&
    (!names.length || names.some((n) => v.Name.includes(n))) &&
    labels.every((l) => labelMatch(v.Labels ?? {}, l));
}

/** The `volume prune` predicate for unused volumes: anonymous ones only unless `all=true`. */
export function pruneFilter(f: Filters, anonymousLabel: string): (v: Listed) => boolean {
  checkKeys(f, ['label', 'label!', 'all']);
  const all = flag(f, 'all') ?? false;
  return (v) => {
    const labels = v.Labels ?? {};
    return (
      (all || anonymousLabel in labels) &&
      (f.get('label') ?? []).every((l) => labelMatch(labels, l)) &&
      !(f.get('label!') ?? []).some((l) => labelMatch(labels, l))
    );
  };
}
