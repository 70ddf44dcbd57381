/**
 * A registry client for one repository (OCI Distribution Spec): requests that answer a `401`
 * challenge with Basic credentials or a Docker token for the repository's scope, then retry.
 */
import { BerthError, unauthorized } from '../util/errors.js';
import { parseChallenge, registryBase } from './login.js';

export interface Credentials {
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** `host[:port]/path/name[:tag|@digest]` with an explicit registry host; Docker Hub is not reachable here. */
export function parseRemote(ref: string): { host: string; repo: string; reference: string } {
  const at = ref.indexOf('@');
  let name = at >= 0 ? ref.slice(0, at) : ref;
  let reference = at >= 0 ? ref.slice(at + 1) : 'latest';
  if (at < 0) {
    const colon = name.lastIndexOf(':');
    if (colon > name.lastIndexOf('/')) {
      reference = name.slice(colon + 1);
      name = name.slice(0, colon);
    }
  }
  const slash = name.indexOf('/');
  const first = slash >= 0 ? name.slice(0, slash) : '';
  if (
    !first ||
    !(first.includes('.') || first.includes(':') || first === 'localhost') ||
    first === 'docker.io'
  ) {
    throw new BerthError(
      'not-found',
      `pull access denied for ${name}: Docker Hub cannot be reached from this machine; name a registry explicitly (e.g. 127.0.0.1:5000/${ref})`,
    );
  }
  return { host: first, repo: name.slice(slash + 1), reference };
}

export class RepositoryClient {
  private authorization?: string;
  readonly base: URL;

  constructor(
    readonly host: string,
    readonly repo: string,
    private readonly creds: Credentials,
    private readonly actions = 'pull',
  ) {
    this.base = registryBase(host);
  }

  url(p: string): URL {
    return new URL(`/v2/${this.repo}/${p}`, this.base);
  }

  async fetch(p: string, init: RequestInit = {}): Promise<Response> {
    const send = () =>
      fetch(/^https?:/.test(p) ? p : this.url(p), {
        ...init,
        headers: {
          ...(init.headers as Record<string, string>),
          ...(this.authorization ? { Authorization: this.authorization } : {}),
        },
        redirect: 'follow',
      }).catch((err: Error) => {
        throw new BerthError(
          'unavailable',
          `Get "${this.url(p)}": ${err.cause instanceof Error ? err.cause.message : err.message}`,
        );
      });
    let r = await send();
    if (r.status !== 401) return r;
    const challenge = r.headers.get('www-authenticate');
    if (!challenge) return r;
    await r.body?.cancel();
    await this.authenticate(challenge);
    r = await send();
    return r;
  }

  private async authenticate(challenge: string): Promise<void> {
    const { scheme, params } = parseChallenge(challenge);
    const basic =
      this.creds.username !== undefined
        ? `Basic ${Buffer.from(`${this.creds.username}:${this.creds.password ?? ''}`).toString('base64')}`
        : undefined;
    if (scheme === 'basic') {
      if (!basic) throw unauthorized(`unauthorized: authentication required for ${this.host}/${this.repo}`);
      this.authorization = basic;
      return;
    }
    if (scheme !== 'bearer' || !params.realm)
      throw unauthorized(`unsupported authentication challenge: ${challenge}`);
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', params.scope ?? `repository:${this.repo}:${this.actions}`);
    if (this.creds.username) realm.searchParams.set('account', this.creds.username);
    const t = await fetch(realm, { headers: basic ? { Authorization: basic } : {} });
    if (!t.ok)
      throw unauthorized(`unauthorized: token request to ${realm.origin} failed with status ${t.status}`);
    const body = (await t.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw unauthorized('unauthorized: the token server answered without a token');
    this.authorization = `Bearer ${token}`;
  }
}
