/**
 * Image references as the CLI shows them: the one grammar (`util/reference.ts`), split into the
 * registry host and path that docker's messages name (`busybox` → `docker.io/library/busybox`).
 */
import { parseReference, splitRepo } from '../util/reference.js';

export interface ImageRef {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

/** Throws `invalid reference format…` as docker does. */
export function parseRef(s: string): ImageRef {
  const r = parseReference(s);
  return { ...splitRepo(r.repo), tag: r.tag, digest: r.digest };
}

/** `docker.io/library/busybox` → `busybox`; other domains are kept. */
export function familiarName(r: ImageRef): string {
  if (r.domain !== 'docker.io') return `${r.domain}/${r.path}`;
  return r.path.startsWith('library/') && r.path.split('/').length === 2 ? r.path.slice(8) : r.path;
}

export function fullName(r: ImageRef): string {
  return `${r.domain}/${r.path}`;
}

export function familiarString(r: ImageRef): string {
  return familiarName(r) + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
}

/** With `:latest` added when neither tag nor digest is given. */
export function withDefaultTag(r: ImageRef): ImageRef {
  return r.tag || r.digest ? r : { ...r, tag: 'latest' };
}
