/**
 * `docker login` on the daemon side (`POST /auth`): checks credentials against a registry's
 * `/v2/` endpoint, answering its Basic or Bearer (Docker token) challenge the way Docker does.
 * Registries on loopback are spoken to over plain HTTP, as moby treats 127.0.0.0/8 and ::1 as
 * insecure registries by default; all others over HTTPS.
 */
import { BerthError, invalid, unauthorized } from '../util/errors.js';

export interface LoginRequest {
  username?: string;
  password?: string;
  serveraddress?: string;
  identitytoken?: string;
}

/** `host:port` → base URL; a scheme given by the user is kept. */
export function registryBase(address: string): URL {
  if (!address) throw invalid('a registry address is required: Docker Hub cannot be reached from here');
  const withScheme = /^https?:\/\//.test(address)
    ? address
    : `${isLoopback(address) ? 'http' : 'https'}://${address}`;
  const u = new URL(withScheme);
  return new URL(`${u.protocol}//${u.host}`);
}

function isLoopback(address: string): boolean {
  const host = address
    .replace(/^\[/, '')
    .replace(/\](:\d+)?$/, '')
    .replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Parses `Bearer realm="…",service="…"` / `Basic realm="…"`. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const sp = header.indexOf(' ');
  const scheme = (sp < 0 ? header : header.slice(0, sp)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(sp + 1).matchAll(/(\w+)="([^"]*)"|(\w+)=([^,\s]+)/g))
    params[m[1] ?? m[3]] = m[2] ?? m[4];
  return { scheme, params };
}

async function get(url: URL | string, headers: Record<string, string> = {}): Promise<Response> {
  try {
    return await fetch(url, { headers, redirect: 'follow', signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw new BerthError(
      'unavailable',
      `Get "${String(url)}": ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
    );
  }
}

export async function login(req: LoginRequest): Promise<{ Status: string; IdentityToken: string }> {
  const base = registryBase(req.serveraddress ?? '');
  const v2 = new URL('/v2/', base);
  const first = await get(v2);
  if (first.ok) return { Status: 'Login Succeeded', IdentityToken: '' };
  const challenge = first.headers.get('www-authenticate');
  if (first.status !== 401 || !challenge)
    throw new BerthError(
      'system',
      `login attempt to ${v2} failed with status: ${first.status} ${first.statusText}`,
    );
  const basic = `Basic ${Buffer.from(`${req.username ?? ''}:${req.password ?? ''}`).toString('base64')}`;
  const { scheme, params } = parseChallenge(challenge);
  if (scheme === 'basic') {
    const r = await get(v2, { Authorization: basic });
    if (r.ok) return { Status: 'Login Succeeded', IdentityToken: '' };
    throw unauthorized(`login attempt to ${v2} failed with status: ${r.status} ${r.statusText}`);
  }
  if (scheme === 'bearer' && params.realm) {
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set('service', params.service);
    if (req.username) realm.searchParams.set('account', req.username);
    const t = await get(realm, { Authorization: basic });
    if (!t.ok) throw unauthorized(`login attempt to ${v2} failed with status: ${t.status} ${t.statusText}`);
    const body = (await t.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token)
      throw unauthorized(`login attempt to ${v2} failed: the token server answered without a token`);
    const r = await get(v2, { Authorization: `Bearer ${token}` });
    if (r.ok) return { Status: 'Login Succeeded', IdentityToken: '' };
    throw unauthorized(`login attempt to ${v2} failed with status: ${r.status} ${r.statusText}`);
  }
  throw new BerthError(
    'system',
    `login attempt to ${v2} failed: unsupported authentication challenge: ${challenge}`,
  );
}
