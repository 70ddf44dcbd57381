/**
 * The registry's HTTP server: the OCI Distribution Spec (pull, push, content discovery, content
 * management, referrers) plus Docker's extensions (`_catalog`, `Docker-Content-Digest`,
 * `Docker-Distribution-API-Version`, token authentication).
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fsp, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Policy, Scope, TokenIssuer } from './auth.js';
import { formatScope, grantedBy, type Htpasswd, parseBasic, parseScope } from './auth.js';
import type { RegistryConfig } from './config.js';
import { MediaType } from '../model/media-types.js';
import { RegistryError, regErr } from './errors.js';
import { checkDigest, checkName, digestAlgorithm, isDigestRef, isTag } from './names.js';
import type { Descriptor, RegistryStorage } from './storage.js';
import { PullThrough } from './proxy.js';

export const MT = MediaType;

const IMAGE_TYPES = new Set<string>([MT.ociManifest, MT.dockerManifest]);
const INDEX_TYPES = new Set<string>([MT.ociIndex, MT.dockerList]);
const KNOWN_MANIFEST_TYPES = new Set<string>([...IMAGE_TYPES, ...INDEX_TYPES]);

export interface AuthSetup {
  type: 'basic' | 'token';
  htpasswd: Htpasswd;
  policy: Policy;
  issuer?: TokenIssuer;
  realm?: string;
}

export interface Logger {
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

export const jsonLogger = (
  minLevel: 'debug' | 'info' | 'warn' | 'error' = 'info',
  out = process.stdout,
): Logger => {
  const order = { debug: 0, info: 1, warn: 2, error: 3 };
  return {
    log(level, msg, fields = {}) {
      if (order[level] < order[minLevel]) return;
      out.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
    },
  };
};

interface Ctx {
  rawPath: string;
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
  user?: string;
  repo?: string;
}

const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');

export class RegistryServer {
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();
  private inflight = 0;
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  private purgeTimer?: NodeJS.Timeout;
  /** Set in pull-through cache mode (`proxy` in the config). */
  private readonly proxy?: PullThrough;

  constructor(
    readonly cfg: RegistryConfig,
    readonly storage: RegistryStorage,
    readonly auth: AuthSetup | undefined,
    readonly logger: Logger,
  ) {
    if (cfg.proxy) this.proxy = new PullThrough(cfg.proxy, storage, logger);
    storage.fence.onWait = () => logger.log('info', 'waiting for a gc sweep to end before a write');
  }

  /** Writes are refused in pull-through cache mode, as distribution does. */
  private refuseInProxyMode(): void {
    if (this.proxy)
      throw new RegistryError(
        'UNSUPPORTED',
        'The operation is unsupported: this registry is a pull-through cache',
        undefined,
        405,
      );
  }

  // ---------------------------------------------------------------- lifecycle

  async listen(): Promise<AddressInfo> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) =>
      this.handle(req, res).catch((err: unknown) => {
        // Last line of defence: one broken request must never take the server down.
        this.logger.log('error', 'request handler failed', {
          error: err instanceof Error ? err.stack : String(err),
        });
        res.destroy();
      });
    const opts: http.ServerOptions = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 30_000 };
    const server = this.cfg.tls
      ? https.createServer(
          { ...opts, cert: readFileSync(this.cfg.tls.certificate), key: readFileSync(this.cfg.tls.key) },
          handler,
        )
      : http.createServer(opts, handler);
    if (this.cfg.limits.maxConnections > 0) server.maxConnections = this.cfg.limits.maxConnections;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    const { host, port } = splitListen(this.cfg.listen);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const ttl = this.cfg.limits.uploadTTLSeconds * 1000;
    await this.storage.purgeUploads(ttl).catch(() => 0);
    this.purgeTimer = setInterval(
      () => void this.storage.purgeUploads(ttl).catch(() => 0),
      Math.min(ttl, 3600_000),
    );
    this.purgeTimer.unref();
    return server.address() as AddressInfo;
  }

  /**
   * Graceful shutdown: stop accepting connections, close idle keep-alive connections, let requests
   * in flight (uploads included) finish within the grace period, then close what is left.
   */
  async shutdown(graceMs = this.cfg.limits.shutdownGraceSeconds * 1000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.draining = true;
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    if (this.inflight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
    server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  // ---------------------------------------------------------------- request plumbing

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const start = process.hrtime.bigint();
    this.inflight++;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://registry.invalid');
    } catch {
      url = new URL('http://registry.invalid/');
    }
    // Route on the path as sent: URL parsing would resolve `..` segments away.
    const rawPath = (req.url ?? '/').split('?')[0];
    const ctx: Ctx = { req, res, url, rawPath };
    res.on('close', () => {
      this.inflight--;
      if (this.cfg.log.requests) {
        this.logger.log('info', 'request', {
          method: req.method,
          path: url.pathname,
          query: url.search || undefined,
          status: res.statusCode,
          bytesOut: Number(res.getHeader('content-length') ?? 0) || undefined,
          durationMs: Number((process.hrtime.bigint() - start) / 1000n) / 1000,
          remote: req.socket.remoteAddress,
          user: ctx.user,
          repository: ctx.repo,
          aborted: !res.writableFinished || undefined,
        });
      }
      if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
    if (this.draining) res.setHeader('Connection', 'close');
    try {
      await this.route(ctx);
    } catch (err) {
      await this.fail(ctx, err);
    }
  }

  private async fail(ctx: Ctx, err: unknown): Promise<void> {
    const { req, res } = ctx;
    let e: RegistryError;
    if (err instanceof RegistryError) e = err;
    else {
      this.logger.log('error', 'internal error', {
        method: req.method,
        path: ctx.url.pathname,
        error: err instanceof Error ? err.stack : String(err),
      });
      e = new RegistryError('UNSUPPORTED', 'internal server error', undefined, 500);
      // UNSUPPORTED is the least wrong code for an unexpected failure; the status says 500.
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = Buffer.from(e.body());
    for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    await this.discardBody(ctx);
    if (res.headersSent || res.destroyed) return;
    res.writeHead(e.status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': body.length,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private send(
    ctx: Ctx,
    status: number,
    headers: Record<string, string | number | string[]>,
    body?: Buffer | string,
  ): void {
    const { res, req } = ctx;
    const buf = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    if (!('Content-Length' in headers)) headers['Content-Length'] = buf ? buf.length : 0;
    if (!req.complete) res.setHeader('Connection', 'close');
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : buf);
  }

  /**
   * Unread request body: a small one is drained first (so the client, still sending, reads our
   * answer instead of a reset connection); after a large one the connection is closed.
   */
  private async discardBody(ctx: Ctx): Promise<void> {
    const { req, res } = ctx;
    if (req.complete || req.readableEnded) return;
    const len = Number(req.headers['content-length'] ?? Number.NaN);
    const limit = 16 * 1024 * 1024;
    if (Number.isFinite(len) && len > limit) {
      res.setHeader('Connection', 'close');
      return;
    }
    // Known small length, or chunked of unknown length: read on up to the limit.
    await new Promise<void>((resolve) => {
      let seen = 0;
      const done = () => {
        req.off('data', onData);
        resolve();
      };
      const onData = (c: Buffer) => {
        seen += c.length;
        if (seen > limit) {
          res.setHeader('Connection', 'close');
          req.pause();
          done();
        }
      };
      req.on('data', onData);
      req.once('end', done);
      req.once('close', done);
      req.once('error', done);
    });
  }

  private json(
    ctx: Ctx,
    status: number,
    value: unknown,
    headers: Record<string, string | number | string[]> = {},
  ): void {
    this.send(
      ctx,
      status,
      { 'Content-Type': 'application/json; charset=utf-8', ...headers },
      JSON.stringify(value),
    );
  }

  private async readBody(ctx: Ctx, limit: number, tooLarge: () => RegistryError): Promise<Buffer> {
    const declared = Number(ctx.req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) throw tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of ctx.req) {
      size += (c as Buffer).length;
      if (size > limit) throw tooLarge();
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  }

  // ---------------------------------------------------------------- routing

  private async route(ctx: Ctx): Promise<void> {
    const p = ctx.rawPath;
    const m = ctx.req.method ?? 'GET';
    if (p === '/healthz' || p === '/debug/health') {
      if (m !== 'GET' && m !== 'HEAD') throw this.methodNotAllowed();
      return this.health(ctx);
    }
    if (p === '/token' && this.auth?.type === 'token') {
      if (m !== 'GET' && m !== 'POST') throw this.methodNotAllowed();
      return this.token(ctx);
    }
    if (p === '/v2' || p === '/v2/') {
      if (m !== 'GET' && m !== 'HEAD') throw this.methodNotAllowed();
      await this.authorize(ctx, []);
      return this.json(ctx, 200, {});
    }
    if (p === '/v2/_catalog') {
      if (m !== 'GET') throw this.methodNotAllowed();
      await this.authorize(ctx, [{ type: 'registry', name: 'catalog', actions: ['*'] }]);
      return this.catalog(ctx);
    }
    let r: RegExpExecArray | null;
    let decoded: string;
    try {
      decoded = decodeURIComponent(p);
    } catch {
      throw regErr('NAME_INVALID', 'malformed URL path');
    }
    r = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(decoded);
    if (r) {
      const name = this.repoName(ctx, r[1]);
      if (m !== 'POST') throw this.methodNotAllowed();
      this.refuseInProxyMode();
      return this.startUpload(ctx, name);
    }
    r = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(decoded);
    if (r) {
      const name = this.repoName(ctx, r[1]);
      this.refuseInProxyMode();
      await this.authorize(ctx, [{ type: 'repository', name, actions: ['push'] }], 'pull,push');
      switch (m) {
        case 'GET':
          return this.uploadStatus(ctx, name, r[2]);
        case 'PATCH':
          return this.uploadChunk(ctx, name, r[2]);
        case 'PUT':
          return this.uploadFinish(ctx, name, r[2]);
        case 'DELETE':
          return this.uploadCancel(ctx, name, r[2]);
        default:
          throw this.methodNotAllowed();
      }
    }
    r = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(decoded);
    if (r) {
      const name = this.repoName(ctx, r[1]);
      if (m === 'GET' || m === 'HEAD') {
        await this.authorize(ctx, [{ type: 'repository', name, actions: ['pull'] }]);
        if (this.proxy) {
          checkDigest(r[2]);
          if (m === 'GET' && !ctx.req.headers.range) {
            const live = await this.proxy.openBlob(name, r[2]);
            if (live) return this.sendLiveBlob(ctx, r[2], live);
          } else await this.proxy.ensureBlob(name, r[2]);
        }
        return this.getBlob(ctx, name, r[2]);
      }
      if (m === 'DELETE') {
        this.refuseInProxyMode();
        await this.authorize(ctx, [{ type: 'repository', name, actions: ['delete'] }]);
        return this.deleteBlob(ctx, name, r[2]);
      }
      throw this.methodNotAllowed();
    }
    r = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(decoded);
    if (r) {
      const name = this.repoName(ctx, r[1]);
      if (m === 'GET' || m === 'HEAD') {
        await this.authorize(ctx, [{ type: 'repository', name, actions: ['pull'] }]);
        if (this.proxy) {
          await this.resolve(name, r[2]); // validates the tag or digest before anything goes upstream
          await this.proxy.ensureManifest(name, r[2]);
        }
        return this.getManifest(ctx, name, r[2]);
      }
      if (m === 'PUT') {
        this.refuseInProxyMode();
        await this.authorize(ctx, [{ type: 'repository', name, actions: ['push'] }], 'pull,push');
        return this.putManifest(ctx, name, r[2]);
      }
      if (m === 'DELETE') {
        this.refuseInProxyMode();
        await this.authorize(ctx, [{ type: 'repository', name, actions: ['delete'] }]);
        return this.deleteManifest(ctx, name, r[2]);
      }
      throw this.methodNotAllowed();
    }
    r = /^\/v2\/(.+)\/tags\/list$/.exec(decoded);
    if (r) {
      const name = this.repoName(ctx, r[1]);
      if (m !== 'GET' && m !== 'HEAD') throw this.methodNotAllowed();
      await this.authorize(ctx, [{ type: 'repository', name, actions: ['pull'] }]);
      return this.tagsList(ctx, name);
    }
    r = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(decoded);
    if (r) {
      const name = this.repoName(ctx, r[1]);
      if (m !== 'GET') throw this.methodNotAllowed();
      await this.authorize(ctx, [{ type: 'repository', name, actions: ['pull'] }]);
      return this.referrers(ctx, name, r[2]);
    }
    if (decoded.startsWith('/v2/')) {
      // A path under /v2/ that names no endpoint: most often an invalid repository name.
      throw regErr('NAME_INVALID', 'invalid repository name or endpoint', undefined, 404);
    }
    throw new RegistryError('UNSUPPORTED', 'not found', undefined, 404);
  }

  private methodNotAllowed(): RegistryError {
    return new RegistryError('UNSUPPORTED', 'method not allowed', undefined, 405);
  }

  private repoName(ctx: Ctx, name: string): string {
    checkName(name);
    ctx.repo = name;
    return name;
  }

  // ---------------------------------------------------------------- auth

  private challenge(
    ctx: Ctx,
    scopes: Scope[],
    error?: string,
    actionsLabel?: string,
  ): Record<string, string> {
    const a = this.auth!;
    if (a.type === 'basic') return { 'WWW-Authenticate': `Basic realm="${a.realm ?? 'berth-registry'}"` };
    const proto = this.cfg.tls ? 'https' : 'http';
    const realm = a.realm ?? `${proto}://${ctx.req.headers.host ?? this.cfg.listen}/token`;
    let h = `Bearer realm="${realm}",service="${a.issuer!.service}"`;
    if (scopes.length) {
      const s = scopes
        .map((sc) => formatScope(actionsLabel ? { ...sc, actions: actionsLabel.split(',') } : sc))
        .join(' ');
      h += `,scope="${s}"`;
    }
    if (error) h += `,error="${error}"`;
    return { 'WWW-Authenticate': h };
  }

  private unauthorized(
    ctx: Ctx,
    needs: Scope[],
    error?: string,
    label?: string,
    message?: string,
  ): RegistryError {
    const detail = needs.map((n) => ({ Type: n.type, Name: n.name, Action: label ?? n.actions.join(',') }));
    return new RegistryError(
      'UNAUTHORIZED',
      message ?? 'authentication required',
      detail.length ? detail : undefined,
      401,
      this.challenge(ctx, needs, error, label),
    );
  }

  /** Who is calling (verifying credentials), or a 401 for bad credentials. */
  private async principal(
    ctx: Ctx,
    needs: Scope[],
    label?: string,
  ): Promise<{ user?: string; access?: Scope[]; authenticated: boolean }> {
    const a = this.auth!;
    const header = ctx.req.headers.authorization;
    if (header && /^bearer /i.test(header) && a.issuer) {
      try {
        const claims = await a.issuer.verify(header.slice(7).trim());
        return { user: claims.sub || undefined, access: claims.access, authenticated: true };
      } catch (err) {
        const why = err instanceof Error && /exp/.test(err.message) ? 'token expired' : 'invalid token';
        throw this.unauthorized(ctx, needs, 'invalid_token', label, why);
      }
    }
    const basic = parseBasic(header);
    if (basic) {
      if (!(await a.htpasswd.verify(basic.user, basic.password)))
        throw this.unauthorized(ctx, needs, undefined, label, 'invalid username or password');
      return { user: basic.user, authenticated: true };
    }
    return { authenticated: false };
  }

  /**
   * Checks the caller may do every action in `needs`: 401 with a challenge when credentials are
   * missing or bad (or an anonymous token lacks the scope), 403 DENIED when a known user lacks it.
   */
  private async authorize(ctx: Ctx, needs: Scope[], label?: string): Promise<void> {
    const a = this.auth;
    if (!a) return;
    const who = await this.principal(ctx, needs, label);
    ctx.user = who.user;
    if (needs.length === 0) {
      // The version check answers 401 until the client has authenticated (Docker logs in through it).
      if (!who.authenticated) throw this.unauthorized(ctx, needs);
      return;
    }
    const ok = needs.every((n) =>
      n.actions.every((act) =>
        who.access ? grantedBy(who.access, n.type, n.name, act) : this.allowedDirect(who.user, n, act),
      ),
    );
    if (ok) return;
    if (!who.user) throw this.unauthorized(ctx, needs, who.access ? 'insufficient_scope' : undefined, label);
    throw new RegistryError(
      'DENIED',
      undefined,
      needs.map((n) => ({ Type: n.type, Name: n.name, Action: n.actions.join(',') })),
    );
  }

  private allowedDirect(user: string | undefined, n: Scope, action: string): boolean {
    const p = this.auth!.policy;
    if (n.type === 'registry') return p.grant(user, { ...n, actions: [action] }).length > 0;
    return p.allowed(user, n.name, action);
  }

  /** May the caller pull from `name` (for cross-repository mounts)? Never throws. */
  private async mayPull(ctx: Ctx, name: string): Promise<boolean> {
    if (!this.auth) return true;
    try {
      await this.authorize(ctx, [{ type: 'repository', name, actions: ['pull'] }]);
      return true;
    } catch {
      return false;
    }
  }

  /** Docker's token endpoint: `GET /token?service=…&scope=…` with optional Basic credentials. */
  private async token(ctx: Ctx): Promise<void> {
    const a = this.auth!;
    const issuer = a.issuer!;
    let params = ctx.url.searchParams;
    let basic = parseBasic(ctx.req.headers.authorization);
    if (ctx.req.method === 'POST') {
      // OAuth2 password grant (what `docker login` tries first when it has no identity token).
      const body = await this.readBody(ctx, this.cfg.limits.requestBytes, () =>
        regErr('SIZE_INVALID', 'request too large', undefined, 413),
      );
      params = new URLSearchParams(body.toString('utf8'));
      if (params.get('grant_type') !== 'password') {
        throw new RegistryError('UNSUPPORTED', 'unsupported grant_type', undefined, 400);
      }
      basic = { user: params.get('username') ?? '', password: params.get('password') ?? '' };
    }
    const service = params.get('service');
    if (service && service !== issuer.service)
      throw new RegistryError('DENIED', `unknown service ${service}`, undefined, 400);
    let user: string | undefined;
    if (basic) {
      if (!(await a.htpasswd.verify(basic.user, basic.password))) {
        throw new RegistryError('UNAUTHORIZED', 'invalid username or password', undefined, 401, {
          'WWW-Authenticate': `Basic realm="${issuer.service}"`,
        });
      }
      user = basic.user;
    }
    ctx.user = user;
    const scopes = params
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean);
    const access: Scope[] = [];
    for (const raw of scopes) {
      const s = parseScope(raw);
      if (!s) throw new RegistryError('UNSUPPORTED', `invalid scope: ${raw}`, undefined, 400);
      const granted = a.policy.grant(user, s);
      // An empty grant is not an error here; the registry refuses the request later.
      const prev = access.find((x) => x.type === s.type && x.name === s.name);
      if (prev) prev.actions = [...new Set([...prev.actions, ...granted])];
      else access.push({ type: s.type, name: s.name, actions: granted });
    }
    const t = await issuer.issue(user ?? '', access);
    this.json(
      ctx,
      200,
      { token: t.token, access_token: t.token, expires_in: t.expiresIn, issued_at: t.issuedAt },
      { 'Cache-Control': 'no-store' },
    );
  }

  // ---------------------------------------------------------------- misc endpoints

  private async health(ctx: Ctx): Promise<void> {
    try {
      await fsp.access(this.storage.root, fsConstants.W_OK);
    } catch {
      return this.json(ctx, 503, { status: 'unavailable', reason: 'storage root not writable' });
    }
    this.json(ctx, 200, { status: this.draining ? 'draining' : 'ok' });
  }

  private paginate(ctx: Ctx, all: string[], linkBase: string): { items: string[]; link?: string } {
    const q = ctx.url.searchParams;
    const last = q.get('last');
    let items = last !== null && last !== '' ? all.filter((t) => t > last) : all;
    const nRaw = q.get('n');
    if (nRaw === null || nRaw === '') return { items };
    if (!/^\d+$/.test(nRaw))
      throw new RegistryError('UNSUPPORTED', `invalid pagination number: ${nRaw}`, { n: nRaw }, 400);
    const n = Math.min(Number(nRaw), 10_000);
    if (n === 0) return { items: [] };
    const more = items.length > n;
    items = items.slice(0, n);
    if (!more) return { items };
    const next = `${linkBase}?n=${n}&last=${encodeURIComponent(items[items.length - 1])}`;
    return { items, link: `<${next}>; rel="next"` };
  }

  private async catalog(ctx: Ctx): Promise<void> {
    const repos = await this.storage.listRepositories();
    const { items, link } = this.paginate(ctx, repos, '/v2/_catalog');
    this.json(ctx, 200, { repositories: items }, link ? { Link: link } : {});
  }

  private async tagsList(ctx: Ctx, name: string): Promise<void> {
    if (!(await this.storage.repoExists(name))) throw regErr('NAME_UNKNOWN', undefined, { name });
    const tags = (await this.proxy?.tags(name)) ?? (await this.storage.tags(name));
    const { items, link } = this.paginate(ctx, tags, `/v2/${enc(name)}/tags/list`);
    this.json(ctx, 200, { name, tags: items }, link ? { Link: link } : {});
  }

  private async referrers(ctx: Ctx, name: string, digest: string): Promise<void> {
    checkDigest(digest);
    let list = await this.storage.referrers(name, digest);
    const headers: Record<string, string> = { 'Content-Type': MT.ociIndex };
    const at = ctx.url.searchParams.get('artifactType');
    if (at) {
      list = list.filter((d) => d.artifactType === at);
      headers['OCI-Filters-Applied'] = 'artifactType';
    }
    this.send(
      ctx,
      200,
      headers,
      JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: list }),
    );
  }

  // ---------------------------------------------------------------- blobs

  private async getBlob(ctx: Ctx, name: string, digest: string): Promise<void> {
    checkDigest(digest);
    const info = await this.storage.blobInRepo(name, digest);
    if (!info) throw regErr('BLOB_UNKNOWN', undefined, { digest });
    const base: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      ETag: `"${digest}"`,
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'max-age=31536000',
    };
    const rangeHeader = ctx.req.headers.range;
    let range: { start: number; end: number } | undefined;
    if (rangeHeader) {
      const parsed = parseRange(rangeHeader, info.size);
      if (parsed !== null) range = parsed;
      else {
        throw new RegistryError(
          'SIZE_INVALID',
          'requested range not satisfiable',
          { digest, range: rangeHeader },
          416,
          {
            'Content-Range': `bytes */${info.size}`,
            'Docker-Content-Digest': digest,
          },
        );
      }
    }
    const { res, req } = ctx;
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    if (range) {
      res.writeHead(206, {
        ...base,
        'Content-Length': range.end - range.start + 1,
        'Content-Range': `bytes ${range.start}-${range.end}/${info.size}`,
      });
    } else {
      res.writeHead(200, { ...base, 'Content-Length': info.size });
    }
    if (req.method === 'HEAD' || info.size === 0) {
      res.end();
      return;
    }
    const stream = this.storage.readBlob(digest, range);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
    await new Promise<void>((resolve) => res.on('close', resolve));
  }

  /** A blob coming from the pull-through cache's upstream, passed on as it arrives. */
  private async sendLiveBlob(ctx: Ctx, digest: string, live: { size?: number; body: Readable }): Promise<void> {
    const { res } = ctx;
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    res.writeHead(200, {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      ETag: `"${digest}"`,
      ...(live.size !== undefined ? { 'Content-Length': live.size } : {}),
    });
    live.body.on('error', () => res.destroy());
    res.on('close', () => live.body.destroy());
    live.body.pipe(res);
    await new Promise<void>((resolve) => res.on('close', resolve));
  }

  private async deleteBlob(ctx: Ctx, name: string, digest: string): Promise<void> {
    if (!this.cfg.delete) throw regErr('UNSUPPORTED', 'deletes are disabled on this registry');
    checkDigest(digest);
    if (!(await this.storage.unlinkBlob(name, digest))) throw regErr('BLOB_UNKNOWN', undefined, { digest });
    this.send(ctx, 202, { 'Docker-Content-Digest': digest });
  }

  private uploadLocation(name: string, id: string): string {
    return `/v2/${enc(name)}/blobs/uploads/${id}`;
  }

  private rangeOf(size: number): string {
    return `0-${Math.max(size - 1, 0)}`;
  }

  private async startUpload(ctx: Ctx, name: string): Promise<void> {
    await this.authorize(ctx, [{ type: 'repository', name, actions: ['push'] }], 'pull,push');
    const q = ctx.url.searchParams;
    const mount = q.get('mount');
    const from = q.get('from');
    const digest = q.get('digest');
    if (mount) {
      checkDigest(mount);
      let source: string | undefined;
      if (from) {
        checkName(from);
        if (await this.mayPull(ctx, from)) source = from;
      }
      // Fenced: a gc sweep must not delete the blob between the check and the link.
      const found = await this.storage.fence.write(async () => {
        const info = source
          ? await this.storage.blobInRepo(source, mount)
          : !this.auth
            ? await this.storage.content.info(mount)
            : undefined;
        if (info) {
          await this.storage.linkBlob(name, mount);
          await this.storage.touch(mount);
        }
        return info;
      });
      if (found) {
        return this.send(ctx, 201, {
          Location: `/v2/${enc(name)}/blobs/${mount}`,
          'Docker-Content-Digest': mount,
        });
      }
      // Not mountable: fall through to a regular upload session (202), as the spec asks.
    }
    if (digest && !mount) {
      checkDigest(digest);
      const len = this.bodyLength(ctx);
      this.checkBlobLimit(len);
      const max = this.cfg.limits.blobBytes > 0 ? this.cfg.limits.blobBytes : undefined;
      await this.storage.putBlob(name, ctx.req, digest, len, max);
      return this.send(ctx, 201, {
        Location: `/v2/${enc(name)}/blobs/${digest}`,
        'Docker-Content-Digest': digest,
      });
    }
    const algParam = q.get('digest-algorithm');
    if (algParam && algParam !== 'sha256' && algParam !== 'sha512') {
      throw regErr('DIGEST_INVALID', `unsupported digest algorithm: ${algParam}`, { algorithm: algParam });
    }
    const algorithm =
      algParam === 'sha512' || (digest && digestAlgorithm(digest) === 'sha512') ? 'sha512' : 'sha256';
    const up = await this.storage.startUpload(name, algorithm);
    this.send(ctx, 202, {
      Location: this.uploadLocation(name, up.id),
      Range: '0-0',
      'Docker-Upload-UUID': up.id,
    });
  }

  private bodyLength(ctx: Ctx): number | undefined {
    const h = ctx.req.headers['content-length'];
    if (h === undefined) return undefined;
    const n = Number(h);
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  }

  private checkBlobLimit(len: number | undefined, already = 0): void {
    const max = this.cfg.limits.blobBytes;
    if (max > 0 && len !== undefined && already + len > max) {
      throw new RegistryError('SIZE_INVALID', `blob exceeds the limit of ${max} bytes`, undefined, 413);
    }
  }

  /** Content-Range of a chunk: `start-end` (the spec) or `bytes start-end/total` (RFC style). */
  private chunkRange(ctx: Ctx): { start: number; end: number } | undefined {
    const h = ctx.req.headers['content-range'];
    if (!h) return undefined;
    const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(h.trim());
    if (!m) throw regErr('BLOB_UPLOAD_INVALID', `invalid Content-Range: ${h}`);
    const start = Number(m[1]);
    const end = Number(m[2]);
    if (end < start) throw regErr('BLOB_UPLOAD_INVALID', `invalid Content-Range: ${h}`);
    return { start, end };
  }

  private outOfOrder(name: string, id: string, size: number, got: number): RegistryError {
    return new RegistryError(
      'BLOB_UPLOAD_INVALID',
      `chunk out of order: upload is at offset ${size}, chunk starts at ${got}`,
      { offset: size },
      416,
      { Location: this.uploadLocation(name, id), Range: this.rangeOf(size), 'Docker-Upload-UUID': id },
    );
  }

  /** Appends the request body (if any) to the upload, honouring Content-Range and Content-Length. */
  private async appendBody(ctx: Ctx, name: string, id: string, size: number): Promise<number> {
    const cr = this.chunkRange(ctx);
    const len = this.bodyLength(ctx);
    if (cr) {
      if (cr.start !== size) throw this.outOfOrder(name, id, size, cr.start);
      if (len !== undefined && len !== cr.end - cr.start + 1) {
        throw regErr(
          'SIZE_INVALID',
          `Content-Length ${len} does not match Content-Range ${cr.start}-${cr.end}`,
        );
      }
    }
    const expected = cr ? cr.end - cr.start + 1 : len;
    if (expected === 0 || (expected === undefined && ctx.req.headers['transfer-encoding'] === undefined))
      return size;
    this.checkBlobLimit(expected, size);
    const max = this.cfg.limits.blobBytes > 0 ? this.cfg.limits.blobBytes : undefined;
    return this.storage.appendUpload(id, ctx.req, expected, max);
  }

  private async uploadStatus(ctx: Ctx, name: string, id: string): Promise<void> {
    const up = await this.storage.upload(name, id);
    this.send(ctx, 204, {
      Location: this.uploadLocation(name, id),
      Range: this.rangeOf(up.size),
      'Docker-Upload-UUID': id,
    });
  }

  private async uploadChunk(ctx: Ctx, name: string, id: string): Promise<void> {
    await this.storage.upload(name, id);
    const size = await this.storage.withUpload(id, async () => {
      const cur = await this.storage.upload(name, id);
      return this.appendBody(ctx, name, id, cur.size);
    });
    this.send(ctx, 202, {
      Location: this.uploadLocation(name, id),
      Range: this.rangeOf(size),
      'Docker-Upload-UUID': id,
    });
  }

  private async uploadFinish(ctx: Ctx, name: string, id: string): Promise<void> {
    await this.storage.upload(name, id);
    const digest = ctx.url.searchParams.get('digest');
    if (!digest) throw regErr('DIGEST_INVALID', 'digest parameter missing');
    checkDigest(digest);
    await this.storage.withUpload(id, async () => {
      const cur = await this.storage.upload(name, id);
      await this.appendBody(ctx, name, id, cur.size);
      try {
        await this.storage.finishUpload(name, id, digest);
      } catch (err) {
        // A wrong digest ends the session: nothing of it is stored.
        if (err instanceof RegistryError && err.code === 'DIGEST_INVALID')
          await this.storage.cancelUpload(id);
        throw err;
      }
    });
    this.send(ctx, 201, { Location: `/v2/${enc(name)}/blobs/${digest}`, 'Docker-Content-Digest': digest });
  }

  private async uploadCancel(ctx: Ctx, name: string, id: string): Promise<void> {
    await this.storage.upload(name, id);
    await this.storage.withUpload(id, () => this.storage.cancelUpload(id));
    this.send(ctx, 204, {});
  }

  // ---------------------------------------------------------------- manifests

  private async resolve(name: string, ref: string): Promise<string | undefined> {
    if (ref.includes(':')) {
      checkDigest(ref);
      return ref;
    }
    if (!isTag(ref)) throw regErr('MANIFEST_INVALID', `invalid tag: ${ref}`, { tag: ref });
    return this.storage.resolveTag(name, ref);
  }

  private async getManifest(ctx: Ctx, name: string, ref: string): Promise<void> {
    const digest = await this.resolve(name, ref);
    let rec = digest ? await this.storage.manifest(name, digest) : undefined;
    if (!rec) throw regErr('MANIFEST_UNKNOWN', undefined, isDigestRef(ref) ? { digest: ref } : { tag: ref });
    const accepted = parseAccept(ctx.req.headers.accept);
    if (!acceptable(accepted, rec.mediaType)) {
      // An old client that does not take indexes gets the linux/amd64 image, as Distribution does.
      const alt = INDEX_TYPES.has(rec.mediaType)
        ? await this.platformFallback(name, rec.digest, accepted)
        : undefined;
      if (!alt) {
        throw regErr('MANIFEST_UNKNOWN', `manifest type ${rec.mediaType} is not among the accepted types`, {
          mediaType: rec.mediaType,
        });
      }
      rec = alt;
    }
    const headers = {
      'Content-Type': rec.mediaType,
      'Docker-Content-Digest': rec.digest,
      ETag: `"${rec.digest}"`,
      'Content-Length': rec.size,
    };
    if (ctx.req.method === 'HEAD') return this.send(ctx, 200, headers);
    const body = await this.storage.readManifest(rec.digest);
    this.send(ctx, 200, headers, body);
  }

  private async platformFallback(name: string, digest: string, accepted: string[]) {
    try {
      const idx = JSON.parse((await this.storage.readManifest(digest)).toString('utf8')) as {
        manifests?: Descriptor[];
      };
      const pick = (idx.manifests ?? []).find(
        (d) => d.platform?.os === 'linux' && d.platform?.architecture === 'amd64',
      );
      if (!pick || !acceptable(accepted, pick.mediaType)) return undefined;
      return this.storage.manifest(name, pick.digest);
    } catch {
      return undefined;
    }
  }

  private async putManifest(ctx: Ctx, name: string, ref: string): Promise<void> {
    const limit = this.cfg.limits.manifestBytes;
    const body = await this.readBody(ctx, limit, () =>
      regErr('MANIFEST_INVALID', `manifest exceeds the limit of ${limit} bytes`, { limit }, 413),
    );
    const tags: string[] = [];
    if (ref.includes(':')) checkDigest(ref);
    const algorithm = ref.includes(':') ? digestAlgorithm(ref) : 'sha256';
    const digest = `${algorithm}:${createHash(algorithm).update(body).digest('hex')}`;
    if (ref.includes(':')) {
      if (digest !== ref)
        throw regErr('DIGEST_INVALID', `manifest digest ${digest} does not match ${ref}`, { digest: ref });
    } else {
      if (!isTag(ref)) throw regErr('MANIFEST_INVALID', `invalid tag: ${ref}`, { tag: ref });
      tags.push(ref);
    }
    for (const t of ctx.url.searchParams.getAll('tag')) {
      if (!isTag(t)) throw regErr('MANIFEST_INVALID', `invalid tag: ${t}`, { tag: t });
      if (!tags.includes(t)) tags.push(t);
    }
    let m: Record<string, any>;
    try {
      m = JSON.parse(body.toString('utf8'));
    } catch {
      throw regErr('MANIFEST_INVALID', 'manifest is not valid JSON');
    }
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      throw regErr('MANIFEST_INVALID', 'manifest must be a JSON object');
    const contentType = (ctx.req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (m.schemaVersion === 1 || contentType === MT.dockerSchema1 || contentType === MT.dockerSchema1Signed) {
      throw regErr('MANIFEST_INVALID', 'Docker schema 1 manifests are not supported');
    }
    if (m.schemaVersion !== 2) throw regErr('MANIFEST_INVALID', 'schemaVersion must be 2');
    if (m.mediaType !== undefined && typeof m.mediaType !== 'string')
      throw regErr('MANIFEST_INVALID', 'mediaType must be a string');
    if (m.mediaType && contentType && KNOWN_MANIFEST_TYPES.has(contentType) && contentType !== m.mediaType) {
      throw regErr(
        'MANIFEST_INVALID',
        `Content-Type ${contentType} does not match the manifest's mediaType ${m.mediaType}`,
      );
    }
    const mediaType: string =
      m.mediaType ||
      (contentType && contentType !== 'application/octet-stream' && contentType !== 'application/json'
        ? contentType
        : '') ||
      (Array.isArray(m.manifests) ? MT.ociIndex : MT.ociManifest);
    let referrer: { subject: string; descriptor: Descriptor } | undefined;
    if (m.subject !== undefined) {
      const s = m.subject;
      if (typeof s !== 'object' || s === null || typeof s.digest !== 'string' || !isDigestRef(s.digest)) {
        throw regErr('MANIFEST_INVALID', 'subject must be a descriptor with a valid digest');
      }
      const d: Descriptor = { mediaType, digest, size: body.length };
      const at =
        typeof m.artifactType === 'string' && m.artifactType
          ? m.artifactType
          : IMAGE_TYPES.has(mediaType)
            ? m.config?.mediaType
            : undefined;
      if (at) d.artifactType = at;
      if (m.annotations && typeof m.annotations === 'object') d.annotations = m.annotations;
      referrer = { subject: s.digest, descriptor: d };
    }
    // Fenced: no gc sweep between finding the referenced blobs and the manifest becoming visible.
    await this.storage.fence.write(async () => {
      await this.verifyReferences(name, m, mediaType);
      await this.storage.putManifest(name, body, digest, mediaType, tags, referrer);
    });
    const headers: Record<string, string | string[]> = {
      Location: `/v2/${enc(name)}/manifests/${digest}`,
      'Docker-Content-Digest': digest,
    };
    if (referrer) headers['OCI-Subject'] = referrer.subject;
    if (ctx.url.searchParams.getAll('tag').length) headers['OCI-Tag'] = tags;
    this.send(ctx, 201, headers);
  }

  /** Every blob and child manifest a manifest names must already be in the repository. */
  private async verifyReferences(name: string, m: Record<string, any>, mediaType: string): Promise<void> {
    const descriptor = (d: any, what: string): Descriptor => {
      if (
        typeof d !== 'object' ||
        d === null ||
        typeof d.digest !== 'string' ||
        typeof d.size !== 'number' ||
        typeof d.mediaType !== 'string'
      ) {
        throw regErr('MANIFEST_INVALID', `${what} is not a valid descriptor`);
      }
      if (!isDigestRef(d.digest))
        throw regErr('MANIFEST_INVALID', `${what} has an invalid digest: ${d.digest}`);
      return d as Descriptor;
    };
    const missing: string[] = [];
    const isImage = IMAGE_TYPES.has(mediaType) || (!INDEX_TYPES.has(mediaType) && m.config !== undefined);
    if (isImage) {
      if (m.config === undefined) throw regErr('MANIFEST_INVALID', 'image manifest has no config');
      const config = descriptor(m.config, 'config');
      if (m.layers !== undefined && !Array.isArray(m.layers))
        throw regErr('MANIFEST_INVALID', 'layers must be a list');
      const blobs = [config, ...((m.layers ?? []) as unknown[]).map((l, i) => descriptor(l, `layer ${i}`))];
      for (const b of blobs) {
        // Non-distributable ("foreign") layers live elsewhere and are never pushed.
        if (/nondistributable|foreign/.test(b.mediaType)) continue;
        const info = await this.storage.blobInRepo(name, b.digest);
        if (!info) missing.push(b.digest);
        else await this.storage.touch(b.digest);
      }
    } else if (INDEX_TYPES.has(mediaType) || Array.isArray(m.manifests)) {
      if (!Array.isArray(m.manifests)) throw regErr('MANIFEST_INVALID', 'index has no manifests list');
      for (const [i, raw] of (m.manifests as unknown[]).entries()) {
        const d = descriptor(raw, `manifest ${i}`);
        if (!(await this.storage.manifest(name, d.digest))) missing.push(d.digest);
      }
    }
    if (missing.length) {
      throw regErr(
        'MANIFEST_BLOB_UNKNOWN',
        `manifest references unknown blobs or manifests: ${missing.join(', ')}`,
        {
          digests: missing,
        },
      );
    }
  }

  private async deleteManifest(ctx: Ctx, name: string, ref: string): Promise<void> {
    if (!this.cfg.delete) throw regErr('UNSUPPORTED', 'deletes are disabled on this registry');
    if (ref.includes(':')) {
      checkDigest(ref);
      if (!(await this.storage.deleteManifest(name, ref)))
        throw regErr('MANIFEST_UNKNOWN', undefined, { digest: ref });
      return this.send(ctx, 202, { 'Docker-Content-Digest': ref });
    }
    if (!isTag(ref)) throw regErr('MANIFEST_INVALID', `invalid tag: ${ref}`, { tag: ref });
    if (!(await this.storage.deleteTag(name, ref))) throw regErr('MANIFEST_UNKNOWN', undefined, { tag: ref });
    this.send(ctx, 202, {});
  }
}

// ------------------------------------------------------------------ helpers

export function splitListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (!m) {
    if (/^\d+$/.test(listen)) return { host: '127.0.0.1', port: Number(listen) };
    throw new Error(`invalid listen address "${listen}" (want HOST:PORT)`);
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}

/** Single byte range of RFC 9110; null when unsatisfiable or malformed. Multiple ranges: whole blob. */
export function parseRange(h: string, size: number): { start: number; end: number } | undefined | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m) return h.includes(',') ? undefined : null;
  if (m[1] === '' && m[2] === '') return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return null;
    return { start: Math.max(size - n, 0), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || Number(m[2] || start) < start) return null;
  return { start, end };
}

function parseAccept(h: string | undefined): string[] {
  if (!h) return [];
  return h
    .split(',')
    .map((s) => s.split(';')[0].trim().toLowerCase())
    .filter(Boolean);
}

/** Serve the stored type unless the client lists manifest types, none of which is it. */
function acceptable(accepted: string[], mediaType: string): boolean {
  if (accepted.length === 0) return true;
  if (accepted.includes(mediaType) || accepted.includes('*/*') || accepted.includes('application/*'))
    return true;
  return !accepted.some((a) => KNOWN_MANIFEST_TYPES.has(a)) || !KNOWN_MANIFEST_TYPES.has(mediaType);
}
