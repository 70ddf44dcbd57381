/**
 * The Engine API server: version negotiation (`/vX.Y/` prefixes), routing, and errors as
 * `{"message": …}` with `Content-Type: application/json` exactly. Serves plain HTTP on unix
 * sockets and TCP, and HTTPS with client-certificate verification when TLS is configured.
 */
import { promises as fs, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import * as path from 'node:path';
import type { Backend } from './backend.js';
import { BerthError, statusOf } from '../util/errors.js';
import { log } from '../util/log.js';
import { answerClientError } from './client-error.js';
import type { Ctx } from './context.js';
import { Router } from './router.js';
import { registerRoutes } from './routes/index.js';
import { API_VERSION, compareApiVersions, ENGINE_VERSION, MIN_API_VERSION } from './version.js';

const SERVER_HEADER = `Berth/${ENGINE_VERSION} (linux)`;

export function commonHeaders(): Record<string, string> {
  return { Server: SERVER_HEADER, 'Api-Version': API_VERSION, Ostype: 'linux', 'Docker-Experimental': 'false' };
}

export class ApiServer {
  readonly router = new Router();
  private servers: (http.Server | https.Server)[] = [];

  constructor(private readonly services: Backend) {
    registerRoutes(this.router);
  }

  /** Every request gets an answer: what fails before a handler runs (a bad URL escape) too. */
  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse | undefined, upgrade?: { socket: Duplex; head: Buffer }) {
    try {
      await this.route(req, res, upgrade);
    } catch (err) {
      writeError(res, upgrade?.socket, statusOf(err), errorText(err));
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse | undefined, upgrade?: { socket: Duplex; head: Buffer }) {
    const url = new URL(req.url ?? '/', 'http://berth');
    let pathname = url.pathname;
    let version = API_VERSION;
    const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(pathname);
    const fail = (status: number, message: string) => writeError(res, upgrade?.socket, status, message);
    if (m) {
      version = m[1];
      pathname = m[2];
      if (compareApiVersions(version, API_VERSION) > 0)
        return fail(400, `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
      if (compareApiVersions(version, MIN_API_VERSION) < 0)
        return fail(
          400,
          `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
        );
    }
    const method = req.method ?? 'GET';
    const found = this.router.match(method, pathname);
    if (!('handler' in found)) {
      return fail(found.allowed ? 405 : 404, found.allowed ? 'method not allowed' : `page not found`);
    }
    const ctx: Ctx = { req, res, upgrade, params: found.params, query: url.searchParams, version, services: this.services };
    const t0 = performance.now();
    try {
      await found.handler(ctx);
      log.debug('request', { method, path: pathname, ms: Math.round(performance.now() - t0) });
    } catch (err) {
      const status = statusOf(err);
      if (status >= 500) log.error('request failed', { method, path: pathname, err: errorText(err) });
      else log.debug('request refused', { method, path: pathname, status, err: errorText(err) });
      if (res?.headersSent) {
        res.destroy();
        return;
      }
      if (status === 304) {
        if (res) {
          res.writeHead(304);
          res.end();
        } else upgrade?.socket.end('HTTP/1.1 304 Not Modified\r\n\r\n');
        return;
      }
      fail(status, errorText(err));
    }
  }

  private handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    for (const [k, v] of Object.entries(commonHeaders())) res.setHeader(k, v);
    void this.dispatch(req, res);
  };

  private onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    void this.dispatch(req, undefined, { socket, head });
  };

  /** Starts a listener per `-H` address: `unix://PATH`, `tcp://HOST:PORT`, `fd://` is not supported. */
  async listen(hosts: string[], tls?: { ca?: string; cert: string; key: string; verify: boolean }): Promise<void> {
    for (const host of hosts) {
      const server = tls && host.startsWith('tcp://')
        ? https.createServer({
            cert: readFileSync(tls.cert),
            key: readFileSync(tls.key),
            ca: tls.ca ? readFileSync(tls.ca) : undefined,
            requestCert: tls.verify,
            rejectUnauthorized: tls.verify,
          }, this.handler)
        : http.createServer(this.handler);
      server.on('upgrade', this.onUpgrade);
      server.keepAliveTimeout = 0;
      server.requestTimeout = 0;
      server.headersTimeout = 0;
      server.on('clientError', answerClientError);
      if (host.startsWith('unix://')) {
        const file = host.slice('unix://'.length);
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.rm(file, { force: true });
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(file, () => resolve());
        });
        await fs.chmod(file, 0o660);
      } else if (host.startsWith('tcp://')) {
        const u = new URL(host.replace(/^tcp:/, 'http:'));
        const port = Number(u.port || (tls ? 2376 : 2375));
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, u.hostname.replace(/^\[|\]$/g, ''), () => resolve());
        });
      } else {
        throw new BerthError('invalid', `unsupported host: ${host}`);
      }
      this.servers.push(server);
      log.info('API listening', { host });
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            // Hijacked (attach/exec) sockets are not the server's to wait for: give up after a moment.
            const t = setTimeout(resolve, 500);
            s.close(() => {
              clearTimeout(t);
              resolve();
            });
            s.closeAllConnections?.();
          }),
      ),
    );
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function writeError(res: http.ServerResponse | undefined, socket: Duplex | undefined, status: number, message: string) {
  const body = JSON.stringify({ message }) + '\n';
  if (res) {
    if (res.headersSent) return res.destroy();
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  } else if (socket) {
    const head = Object.entries(commonHeaders())
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n${head}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
}
