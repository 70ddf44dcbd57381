/**
 * Image references as Docker reads them (distribution's `reference` grammar): `busybox`,
 * `busybox:1.36`, `team/app`, `127.0.0.1:5000/team/app:v1`, `name@sha256:…`. The API sends names
 * fully qualified (`docker.io/library/busybox`); Berth stores and shows the familiar form.
 */
import { invalid } from './errors.js';

export interface Reference {
  /** Familiar repository name: `busybox`, `team/app`, `127.0.0.1:5000/team/app`. */
  repo: string;
  tag?: string;
  digest?: string;
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`,
);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const DEFAULT_DOMAIN = 'docker.io';

const bad = (s: string) => invalid(`invalid reference format: ${s}`);

/** Splits the domain off like docker's `splitDockerDomain`; returns the domain and the path. */
function splitDomain(name: string): [string, string] {
  const i = name.indexOf('/');
  const first = i === -1 ? '' : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    return [DEFAULT_DOMAIN, name];
  }
  let domain = first;
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  return [domain, name.slice(i + 1)];
}

export function parseReference(input: string): Reference {
  const s = input.trim();
  if (s === '' || s.length > 255 + 140) throw bad(s);
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(s);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(s);
  }
  const [domain, p] = splitDomain(rest);
  if (!DOMAIN.test(domain)) throw bad(s);
  const parts = p.split('/');
  for (const c of parts) {
    if (!PATH_COMPONENT.test(c)) {
      if (PATH_COMPONENT.test(c.toLowerCase()))
        throw invalid(`invalid reference format: repository name (${p}) must be lowercase`);
      throw bad(s);
    }
  }
  let repo: string;
  if (domain === DEFAULT_DOMAIN) repo = parts.length === 2 && parts[0] === 'library' ? parts[1] : p;
  else repo = `${domain}/${p}`;
  if (repo.length > 255)
    throw invalid('invalid reference format: repository name must not be more than 255 characters');
  return { repo, tag, digest };
}

/** A familiar repository's registry host and path: `busybox` → `docker.io`, `library/busybox`. */
export function splitRepo(repo: string): { domain: string; path: string } {
  const [domain, p] = splitDomain(repo);
  return { domain, path: domain === DEFAULT_DOMAIN && !p.includes('/') ? `library/${p}` : p };
}

export function isReference(s: string): boolean {
  try {
    parseReference(s);
    return true;
  } catch {
    return false;
  }
}

/** `busybox` → `busybox:latest`; a reference with a digest keeps no default tag. */
export function withDefaultTag(r: Reference): Reference {
  return r.tag || r.digest ? r : { ...r, tag: 'latest' };
}

/** The familiar string: `busybox:latest`, `team/app@sha256:…`. */
export function familiar(r: Reference): string {
  if (r.digest) return `${r.repo}@${r.digest}`;
  return r.tag ? `${r.repo}:${r.tag}` : r.repo;
}

/** Fully qualified: `docker.io/library/busybox:latest` (what OCI layout annotations carry). */
export function qualified(r: Reference): string {
  const [domain] = splitDomain(r.repo);
  let name = r.repo;
  if (domain === DEFAULT_DOMAIN && !r.repo.startsWith(`${DEFAULT_DOMAIN}/`))
    name = `${DEFAULT_DOMAIN}/${r.repo.includes('/') ? '' : 'library/'}${r.repo}`;
  return familiar({ ...r, repo: name });
}

/** The key under which a tag or digest reference is stored. */
export function refKey(input: string): string {
  return familiar(withDefaultTag(parseReference(input)));
}

/** Docker's `reference` filter: a glob on the familiar name, with or without the tag. */
export function matchesReferenceFilter(pattern: string, ref: string): boolean {
  const glob = (p: string) =>
    new RegExp(
      `^${p
        .split('')
        .map((ch) => (ch === '*' ? '[^/]*' : ch === '?' ? '[^/]' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('')}$`,
    );
  let pat = pattern;
  try {
    const r = parseReference(pattern);
    pat = familiar(r);
  } catch {
    // a glob such as `busy*` is not a valid reference: match it as written
  }
  const r = parseReference(ref);
  if (glob(pat).test(familiar(r))) return true;
  // Without a tag or digest the pattern names a repository (`host:port/repo` carries a colon too).
  const tagless = !pat.slice(pat.lastIndexOf('/') + 1).includes(':') && !pat.includes('@');
  return tagless && glob(pat).test(r.repo);
}
