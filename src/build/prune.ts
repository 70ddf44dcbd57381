/**
 * Which build cache records `POST /build/prune` drops, with the rules BuildKit applies to its
 * records (what `docker builder prune` drives): without `all` only records nothing else holds go
 * (here: a step whose image no tagged image is built on, and the cache mounts); records used more
 * recently than `keepDurationMs` stay; the filters narrow the choice (`id` a regular expression,
 * the other fields compared whole, a field given without a value meaning true); with `keepBytes`
 * the least recently used go first until the cache is no larger than that.
 */
import type { Filters } from '../model/filters.js';
import { invalid } from '../util/errors.js';
import type { BuildCacheRecord } from './index.js';

export interface BuildPruneOptions {
  /** `-a`: shared records (a tagged image's steps) too. */
  all: boolean;
  /** `until` / `unused-for`: records used within this many ms are kept. */
  keepDurationMs?: number;
  /** `keep-storage` / `reserved-space`: prune only down to this many bytes of cache. */
  keepBytes?: number;
  /** id, parent, type, description, inuse, shared, private. */
  filters?: Filters;
}

function fieldMatches(r: BuildCacheRecord, key: string, value: string | undefined): boolean {
  const flag = (b: boolean) => (value === undefined ? b : String(b) === value);
  switch (key) {
    case 'id':
      if (value === undefined) return true;
      try {
        return new RegExp(value).test(r.ID);
      } catch {
        throw invalid(`invalid filter value for id: ${value}`);
      }
    case 'parent':
      return value === undefined ? (r.Parents ?? []).length > 0 : (r.Parents ?? []).includes(value);
    case 'type':
      return value === undefined ? r.Type !== '' : r.Type === value;
    case 'description':
      return value === undefined ? r.Description !== '' : r.Description === value;
    case 'inuse':
      return flag(r.InUse);
    case 'shared':
      return flag(r.Shared);
    case 'private':
      return flag(!r.Shared);
    default:
      return true; // label, label!: accepted and not applied, as by Docker
  }
}

/** The records to drop, in the order to drop them. `now` is the time of the request. */
export function selectForPrune(records: BuildCacheRecord[], o: BuildPruneOptions, now: number): BuildCacheRecord[] {
  const filters = [...(o.filters ?? new Map())];
  const candidates = records.filter((r) => {
    if (r.InUse) return false;
    if (!o.all && r.Shared) return false;
    if (o.keepDurationMs) {
      const used = Date.parse(r.LastUsedAt ?? r.CreatedAt);
      if (!Number.isNaN(used) && used > now - o.keepDurationMs) return false;
    }
    return filters.every(([k, vs]) => fieldMatches(r, k, vs[0]));
  });
  if (!o.keepBytes) return candidates;
  const lastUsed = (r: BuildCacheRecord) => Date.parse(r.LastUsedAt ?? r.CreatedAt) || 0;
  candidates.sort((a, b) => lastUsed(a) - lastUsed(b));
  let total = records.reduce((n, r) => n + r.Size, 0);
  const out: BuildCacheRecord[] = [];
  for (const r of candidates) {
    if (total <= o.keepBytes) break;
    out.push(r);
    total -= r.Size;
  }
  return out;
}
