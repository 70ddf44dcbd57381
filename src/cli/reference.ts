/** Image references as docker's distribution/reference normalizes them (`busybox` → `docker.io/library/busybox:latest`). */

export interface ImageRef {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

export function parseRef(s: string): ImageRef {
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!rest || /[A-Z]/.test(rest) || !/^[a-z0-9._\-/:[\]]+$/.test(rest)) {
    throw new Error(
      `invalid reference format${/[A-Z]/.test(rest) ? ': repository name (' + rest + ') must be lowercase' : ''}`,
    );
  }
  const slash = rest.indexOf('/');
  let domain = 'docker.io';
  let path = rest;
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (
      first.includes('.') ||
      first.includes(':') ||
      first === 'localhost' ||
      first !== first.toLowerCase()
    ) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  return { domain, path, tag, digest };
}

/** `docker.io/library/busybox` → `busybox`; other domains are kept. */
export function familiarName(r: ImageRef): string {
  if (r.domain !== 'docker.io') return `${r.domain}/${r.path}`;
  return r.path.startsWith('library/') && r.path.split('/').length === 2 ? r.path.slice(8) : r.path;
}

export function fullName(r: ImageRef): string {
  return `${r.domain}/${r.path}`;
}

/** With `:latest` added when neither tag nor digest is given. */
export function familiarString(r: ImageRef): string {
  return familiarName(r) + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
}

export function withDefaultTag(r: ImageRef): ImageRef {
  return r.tag || r.digest ? r : { ...r, tag: 'latest' };
}
