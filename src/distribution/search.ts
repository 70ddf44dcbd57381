/**
 * `docker search TERM` (`GET /images/search`) against registries that offer a catalog
 * (`/v2/_catalog`, berth-registry does to those allowed): `127.0.0.1:5000/app` searches that
 * registry, a term without a registry host searches the Docker Hub mirrors (the first that answers).
 * Registries have no stars or descriptions: those fields are empty, as a v2 catalog knows names only.
 */
import { BerthError, invalid } from '../util/errors.js';
import { type Credentials, RepositoryClient, registryMessage } from './client.js';
import { DOCKER_HUB, type RegistrySettings } from './registries.js';

export interface SearchResult {
  star_count: number;
  is_official: boolean;
  name: string;
  is_automated: boolean;
  description: string;
}

export interface SearchFilters {
  stars?: number;
  isOfficial?: boolean;
  isAutomated?: boolean;
}

/** Pages of the catalog read at most: 10 × 1000 names. */
const MAX_PAGES = 10;

/** Docker's split: a first component with `.` or `:` (or `localhost`) names the registry. */
function splitTerm(term: string): { host: string; remote: string } {
  const i = term.indexOf('/');
  const first = i < 0 ? '' : term.slice(0, i);
  if (i >= 0 && (/[.:]/.test(first) || first === 'localhost')) return { host: first, remote: term.slice(i + 1) };
  return { host: DOCKER_HUB, remote: term };
}

async function catalog(base: URL, creds: Credentials): Promise<string[]> {
  const client = new RepositoryClient(base, '', creds, 'pull');
  const names: string[] = [];
  let next: URL | undefined = new URL('/v2/_catalog?n=1000', base);
  for (let page = 0; next && page < MAX_PAGES; page++) {
    const r = await client.fetch(next.toString());
    if (r.status === 401 || r.status === 403)
      throw new BerthError('forbidden', `unauthorized: the catalog of ${base.host} needs 'docker login' as a user allowed to list it`);
    if (!r.ok)
      throw new BerthError('system', `search on ${base.host}: the registry answered ${r.status}: ${await registryMessage(r)}`);
    const body = (await r.json().catch(() => ({}))) as { repositories?: unknown };
    if (!Array.isArray(body.repositories)) throw invalid(`search on ${base.host}: the registry's catalog is not a list`);
    names.push(...body.repositories.filter((n): n is string => typeof n === 'string'));
    const link = /<([^>]+)>;\s*rel="?next"?/.exec(r.headers.get('link') ?? '')?.[1];
    next = link ? new URL(link, base) : undefined;
  }
  return names;
}

export async function search(
  registries: RegistrySettings,
  term: string,
  limit: number,
  filters: SearchFilters,
  creds: Credentials,
): Promise<SearchResult[]> {
  if (!term) throw invalid('search term is required');
  const { host, remote } = splitTerm(term);
  const hub = host === DOCKER_HUB;
  if (hub && registries.mirrors.length === 0)
    throw new BerthError(
      'unavailable',
      `cannot search Docker Hub from this machine: configure a registry mirror ("registry-mirrors" in daemon.json) or name a registry (docker search 127.0.0.1:5000/${term})`,
    );
  let names: string[] | undefined;
  let lastErr: unknown;
  for (const ep of registries.pullEndpoints(host, remote)) {
    try {
      names = await catalog(ep.base, creds);
      break;
    } catch (err) {
      lastErr = err;
    }
  }
  if (!names) throw lastErr;
  const needle = remote.toLowerCase();
  const results: SearchResult[] = [];
  for (const n of names) {
    const shown = hub ? n.replace(/^library\//, '') : `${host}/${n}`;
    if (!n.toLowerCase().includes(needle) && !shown.toLowerCase().includes(needle)) continue;
    const r: SearchResult = {
      star_count: 0,
      is_official: hub && n.startsWith('library/'),
      name: shown,
      is_automated: false,
      description: '',
    };
    if (filters.stars !== undefined && r.star_count < filters.stars) continue;
    if (filters.isOfficial !== undefined && r.is_official !== filters.isOfficial) continue;
    if (filters.isAutomated !== undefined && r.is_automated !== filters.isAutomated) continue;
    results.push(r);
    if (results.length >= limit) break;
  }
  return results;
}
