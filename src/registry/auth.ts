/**
 * Access control: users from an htpasswd file (bcrypt), Docker's token authentication (ES256 JWTs
 * for `repository:NAME:pull,push` scopes) and per-repository permissions from the config file.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import bcrypt from 'bcryptjs';
import * as jose from 'jose';
import { writeFileAtomic } from '../util/fsx.js';
import type { AccessConfig, RepositoryRule } from './config.js';

export type Action = 'pull' | 'push' | 'delete';

export interface Scope {
  type: string; // 'repository' | 'registry'
  name: string;
  actions: string[];
}

/** Parses `repository:library/busybox:pull,push` (names may not contain ':' so the split is safe). */
export function parseScope(s: string): Scope | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  let type = s.slice(0, first);
  // `repository(plugin):name:pull` is Docker's resource class syntax; the class is ignored.
  type = type.replace(/\(.*\)$/, '');
  const name = s.slice(first + 1, last);
  const actions = s
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (!type || !name) return undefined;
  return { type, name, actions };
}

export const formatScope = (s: Scope) => `${s.type}:${s.name}:${s.actions.join(',')}`;

// ------------------------------------------------------------------ htpasswd

export class Htpasswd {
  private users = new Map<string, string>();
  /** Recently verified credentials (hash of user:password → expiry) so bcrypt runs once a minute, not per request. */
  private verified = new Map<string, number>();

  constructor(readonly file: string) {}

  async load(): Promise<void> {
    const text = await fs.readFile(this.file, 'utf8');
    const users = new Map<string, string>();
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const hash = line.slice(i + 1);
      if (!/^\$2[abxy]?\$/.test(hash))
        throw new Error(
          `htpasswd ${this.file}: only bcrypt entries are supported (user ${line.slice(0, i)})`,
        );
      users.set(line.slice(0, i), hash);
    }
    this.users = users;
    this.verified.clear();
  }

  has(user: string): boolean {
    return this.users.has(user);
  }

  async verify(user: string, password: string): Promise<boolean> {
    const hash = this.users.get(user);
    if (!hash) {
      // Spend comparable time for unknown users.
      await bcrypt.compare(password, '$2a$10$CwTycUXWue0Thq9StjUM0uJ8E8a1mRd7bQ3xS5CY6hLQF.wsf/D3.');
      return false;
    }
    const key = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('hex');
    const exp = this.verified.get(key);
    if (exp !== undefined && exp > Date.now()) return true;
    const ok = await bcrypt.compare(password, hash);
    if (ok) {
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(key, Date.now() + 60_000);
    }
    return ok;
  }
}

export function hashPassword(password: string, rounds = 10): string {
  return bcrypt.hashSync(password, rounds);
}

// ------------------------------------------------------------------ policy

const matchCache = new Map<string, RegExp>();
/** In a rule's `match`, stands for the calling user's name. */
const USER_VAR = '$' + '{user}';

/** `*` matches within one path component, `**` across components. */
export function globToRegExp(glob: string): RegExp {
  let re = matchCache.get(glob);
  if (re) return re;
  let src = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `a/**` also matches `a` itself.
        if (src.endsWith('/') && i + 2 === glob.length) src = `${src.slice(0, -1)}(?:/.*)?`;
        else src += '.*';
        i++;
      } else src += '[^/]*';
    } else src += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  re = new RegExp(`^${src}$`);
  matchCache.set(glob, re);
  return re;
}

export class Policy {
  constructor(readonly cfg: AccessConfig) {}

  private groupsOf(user: string): Set<string> {
    const out = new Set<string>();
    for (const [g, members] of Object.entries(this.cfg.groups ?? {})) if (members.includes(user)) out.add(g);
    return out;
  }

  private listed(list: string[] | undefined, user: string | undefined): boolean {
    if (!list) return false;
    const groups = user ? this.groupsOf(user) : new Set<string>();
    return list.some((p) => {
      if (p === '*') return true;
      if (!user) return false;
      if (p === '+') return true;
      if (p.startsWith('@')) return groups.has(p.slice(1));
      return p === user;
    });
  }

  isAdmin(user: string | undefined): boolean {
    return !!user && this.listed(this.cfg.admins ?? [], user);
  }

  private rule(name: string, user: string | undefined): RepositoryRule | undefined {
    for (const r of this.cfg.repositories ?? []) {
      const pattern = user ? r.match.replaceAll(USER_VAR, user) : r.match;
      if (!user && r.match.includes(USER_VAR)) continue;
      if (globToRegExp(pattern).test(name)) return r;
    }
    return undefined;
  }

  /** Whether `user` (undefined = anonymous) may do `action` on repository `name`. */
  allowed(user: string | undefined, name: string, action: string): boolean {
    if (this.isAdmin(user)) return true;
    const official = name.startsWith('library/');
    if (official && action !== 'pull') return false; // the official namespace is written by administrators only
    if (user && this.cfg.userNamespaces && (name.startsWith(`${user}/`) || name === user)) return true;
    const r = this.rule(name, user);
    if (!r) return official && action === 'pull' && this.cfg.officialPublic !== false;
    if (action === 'pull')
      return this.listed(r.pull, user) || this.listed(r.push, user) || this.listed(r.delete, user);
    if (action === 'push') return this.listed(r.push, user);
    if (action === 'delete') return this.listed(r.delete, user);
    return false;
  }

  /** The subset of requested actions this user gets for a scope. */
  grant(user: string | undefined, scope: Scope): string[] {
    if (scope.type === 'registry' && scope.name === 'catalog') {
      return this.isAdmin(user) ? scope.actions.filter((a) => a === '*') : [];
    }
    if (scope.type !== 'repository') return [];
    const out: string[] = [];
    for (const a of scope.actions) {
      if (a === '*') {
        if (['pull', 'push', 'delete'].every((x) => this.allowed(user, scope.name, x))) out.push('*');
      } else if (this.allowed(user, scope.name, a)) out.push(a);
    }
    return out;
  }
}

// ------------------------------------------------------------------ tokens

export interface TokenClaims {
  sub: string;
  access: Scope[];
}

export class TokenIssuer {
  private constructor(
    private readonly privateKey: CryptoKey | jose.KeyObject,
    private readonly publicKey: CryptoKey | jose.KeyObject,
    readonly kid: string,
    readonly issuer: string,
    readonly service: string,
    readonly ttlSeconds: number,
  ) {}

  /** Loads the signing key from a PEM file, or from (or newly into) `<root>/auth/token-key.jwk`. */
  static async open(opts: {
    root: string;
    keyFile?: string;
    issuer: string;
    service: string;
    ttlSeconds: number;
  }): Promise<TokenIssuer> {
    let priv: CryptoKey | jose.KeyObject;
    let jwk: jose.JWK;
    if (opts.keyFile) {
      const pem = await fs.readFile(opts.keyFile, 'utf8');
      priv = await jose.importPKCS8(pem, 'ES256', { extractable: true });
      jwk = await jose.exportJWK(priv);
    } else {
      const file = path.join(opts.root, 'auth', 'token-key.jwk');
      try {
        jwk = JSON.parse(await fs.readFile(file, 'utf8'));
        priv = (await jose.importJWK(jwk, 'ES256')) as CryptoKey;
      } catch {
        const pair = await jose.generateKeyPair('ES256', { extractable: true });
        jwk = await jose.exportJWK(pair.privateKey);
        await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
        await writeFileAtomic(file, JSON.stringify(jwk), 0o600);
        priv = pair.privateKey;
      }
    }
    const { d: _d, ...pubJwk } = jwk;
    const pub = (await jose.importJWK({ ...pubJwk, alg: 'ES256' }, 'ES256')) as CryptoKey;
    const kid = await jose.calculateJwkThumbprint(pubJwk as jose.JWK);
    return new TokenIssuer(priv, pub, kid, opts.issuer, opts.service, opts.ttlSeconds);
  }

  async issue(sub: string, access: Scope[]): Promise<{ token: string; expiresIn: number; issuedAt: string }> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new jose.SignJWT({ access })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: this.kid })
      .setIssuer(this.issuer)
      .setAudience(this.service)
      .setSubject(sub)
      .setIssuedAt(now)
      .setNotBefore(now - 1)
      .setExpirationTime(now + this.ttlSeconds)
      .setJti(createHash('sha256').update(`${sub}${now}${Math.random()}`).digest('hex').slice(0, 24))
      .sign(this.privateKey);
    return { token, expiresIn: this.ttlSeconds, issuedAt: new Date(now * 1000).toISOString() };
  }

  /** Verifies signature, issuer, audience and lifetime; throws with a reason otherwise. */
  async verify(token: string): Promise<TokenClaims> {
    const { payload } = await jose.jwtVerify(token, this.publicKey, {
      issuer: this.issuer,
      audience: this.service,
      algorithms: ['ES256'],
      clockTolerance: 5,
    });
    const access = Array.isArray(payload.access) ? (payload.access as Scope[]) : [];
    return { sub: typeof payload.sub === 'string' ? payload.sub : '', access };
  }
}

export function grantedBy(access: Scope[], type: string, name: string, action: string): boolean {
  return access.some(
    (s) =>
      s.type === type &&
      s.name === name &&
      Array.isArray(s.actions) &&
      (s.actions.includes(action) || s.actions.includes('*')),
  );
}

export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const raw = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const i = raw.indexOf(':');
  if (i < 0) return undefined;
  return { user: raw.slice(0, i), password: raw.slice(i + 1) };
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
