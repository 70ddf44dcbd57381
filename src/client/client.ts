/**
 * A typed client for the Docker Engine API as berthd (and dockerd) serve it: unix socket, TCP and
 * TLS; version-prefixed paths after a `/_ping` negotiation; JSON errors become `ApiError` values
 * carrying the status; JSON-message streams; connection hijack for attach and exec.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import type * as https from 'node:https';
import type { Duplex, Readable } from 'node:stream';

export const CLIENT_API_VERSION = '1.50';
export const FALLBACK_API_VERSION = '1.24';

/** An error answered by the daemon (`{"message": …}`), with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The daemon could not be reached at all. */
export class ConnectError extends Error {}

export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
  verify: boolean;
}

export interface Endpoint {
  /** As given, e.g. `unix:///run/berth/berth.sock` or `tcp://127.0.0.1:2375`. */
  host: string;
  socketPath?: string;
  hostname?: string;
  port?: number;
  tls?: TlsFiles;
}

/** Parses a `-H`/`DOCKER_HOST` value the way the docker CLI does. */
export function parseHost(host: string, tls?: TlsFiles): Endpoint {
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (!socketPath) throw new Error(`invalid bind address (${host}): path is empty`);
    return { host, socketPath };
  }
  if (host.startsWith('/')) return { host: `unix://${host}`, socketPath: host };
  let rest = host;
  if (host.startsWith('tcp://')) rest = host.slice(6);
  else if (host.startsWith('http://')) rest = host.slice(7);
  else if (host.startsWith('https://')) {
    rest = host.slice(8);
    tls = tls ?? { verify: true };
  } else if (/^[a-z]+:\/\//.test(host)) throw new Error(`unsupported protocol in host ${host}`);
  rest = rest.replace(/\/+$/, '');
  let hostname = rest;
  let port = tls ? 2376 : 2375;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:]*)(?::(\d+))?$/.exec(rest);
  if (m) {
    hostname = m[1] || '127.0.0.1';
    if (m[2]) port = Number(m[2]);
  }
  return { host, hostname, port, tls };
}

export type QueryValue = string | number | boolean | undefined | null | string[];

/** Encodes a query the way Go's url.Values does (sorted keys; booleans as 1; lists repeated). */
export function encodeQuery(q: Record<string, QueryValue> | undefined): string {
  if (!q) return '';
  const parts: string[] = [];
  for (const k of Object.keys(q).sort()) {
    const v = q[k];
    if (v === undefined || v === null) continue;
    const vals = Array.isArray(v) ? v : [typeof v === 'boolean' ? (v ? '1' : '0') : String(v)];
    for (const one of vals) parts.push(`${enc(k)}=${enc(one)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function enc(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  /** A JSON value, a Buffer/string sent as-is, or a stream sent chunked. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Do not prefix the path with `/v1.NN`. */
  unversioned?: boolean;
  signal?: AbortSignal;
}

export class EngineClient {
  private version?: string;
  private negotiating?: Promise<string>;
  private agent?: http.Agent;
  private httpsModule?: typeof https;
  /** Headers of the last `/_ping`. */
  ping?: http.IncomingHttpHeaders;

  constructor(
    readonly endpoint: Endpoint,
    opts: { version?: string } = {},
  ) {
    this.version = opts.version;
  }

  /** The transport: node:https is loaded only for TLS endpoints (it costs start-up time). */
  private async transport(): Promise<{ mod: typeof http | typeof https; agent: http.Agent }> {
    if (this.endpoint.tls) {
      this.httpsModule ??= await import('node:https');
      this.agent ??= new this.httpsModule.Agent({ keepAlive: true, ...tlsOptions(this.endpoint.tls) });
      return { mod: this.httpsModule, agent: this.agent };
    }
    this.agent ??= new http.Agent({ keepAlive: true });
    return { mod: http, agent: this.agent };
  }

  /** The API version in use (after negotiation). */
  async apiVersion(): Promise<string> {
    if (this.version) return this.version;
    this.negotiating ??= this.negotiate();
    return this.negotiating;
  }

  private async negotiate(): Promise<string> {
    let res: http.IncomingMessage;
    try {
      res = await this.raw('HEAD', '/_ping', {});
    } catch (err) {
      if (err instanceof ApiError) res = await this.raw('GET', '/_ping', {});
      else throw err;
    }
    res.resume();
    this.ping = res.headers;
    const server = String(res.headers['api-version'] ?? '');
    let v = FALLBACK_API_VERSION;
    if (server) v = compareVersions(server, CLIENT_API_VERSION) < 0 ? server : CLIENT_API_VERSION;
    this.version = v;
    return v;
  }

  private options(
    method: string,
    path: string,
    headers: Record<string, string>,
    agent: http.Agent | false,
  ): https.RequestOptions {
    const ep = this.endpoint;
    const o: https.RequestOptions = {
      method,
      path,
      headers: { 'User-Agent': 'Berth-Client/0.1.0 (linux)', ...headers },
      agent,
    };
    if (ep.socketPath) {
      o.socketPath = ep.socketPath;
      (o.headers as Record<string, string>).Host = 'api.moby.localhost';
    } else {
      o.hostname = ep.hostname;
      o.port = ep.port;
    }
    return o;
  }

  private async fullPath(path: string, opts: RequestOptions): Promise<string> {
    const prefix = opts.unversioned ? '' : `/v${await this.apiVersion()}`;
    return prefix + path + encodeQuery(opts.query);
  }

  private bodyOf(opts: RequestOptions, headers: Record<string, string>): Buffer | Readable | undefined {
    const b = opts.body;
    if (b === undefined) return undefined;
    if (Buffer.isBuffer(b)) return b;
    if (typeof b === 'string') return Buffer.from(b);
    if (b && typeof (b as Readable).pipe === 'function') {
      headers['Content-Type'] ??= 'application/x-tar';
      return b as Readable;
    }
    headers['Content-Type'] ??= 'application/json';
    return Buffer.from(JSON.stringify(b) + '\n');
  }

  /** One request; resolves with the response whatever its status. */
  private async raw(method: string, fullPath: string, opts: RequestOptions): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const body = this.bodyOf(opts, headers);
    if (Buffer.isBuffer(body)) headers['Content-Length'] = String(body.length);
    const { mod, agent } = await this.transport();
    return new Promise((resolve, reject) => {
      const req = mod.request(this.options(method, fullPath, headers, agent));
      if (opts.signal) {
        const onAbort = () => req.destroy(new Error('aborted'));
        if (opts.signal.aborted) onAbort();
        else opts.signal.addEventListener('abort', onAbort, { once: true });
      }
      req.on('error', (err: NodeJS.ErrnoException) => reject(this.connectError(err)));
      req.on('response', (res) => resolve(res));
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on('error', (e) => req.destroy(e));
        body.pipe(req);
      }
    });
  }

  private connectError(err: NodeJS.ErrnoException): Error {
    if (
      ['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT'].includes(err.code ?? '')
    ) {
      const hint =
        err.code === 'EACCES'
          ? `permission denied while trying to connect to the daemon socket at ${this.endpoint.host}`
          : `Cannot connect to the Docker daemon at ${this.endpoint.host}. Is the docker daemon running?`;
      return new ConnectError(hint);
    }
    return err;
  }

  /** A request whose error statuses (≥ 400) are turned into ApiError. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<http.IncomingMessage> {
    const res = await this.raw(method, await this.fullPath(path, opts), opts);
    if ((res.statusCode ?? 500) >= 400) throw await errorFrom(res);
    return res;
  }

  /** A request answered by a JSON body (or nothing: 204/304 yield undefined). */
  async json<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, opts);
    const body = await readAll(res);
    if (res.statusCode === 204 || res.statusCode === 304 || body.length === 0) return undefined as T;
    return JSON.parse(body.toString('utf8')) as T;
  }

  get<T = any>(path: string, query?: Record<string, QueryValue>): Promise<T> {
    return this.json<T>('GET', path, { query });
  }

  post<T = any>(path: string, query?: Record<string, QueryValue>, body?: unknown): Promise<T> {
    return this.json<T>('POST', path, { query, body });
  }

  /** Status code only (start/stop answer 204 or 304). */
  async status(method: string, path: string, opts: RequestOptions = {}): Promise<number> {
    const res = await this.request(method, path, opts);
    res.resume();
    return res.statusCode ?? 0;
  }

  /** A JSON-message stream (pull, push, load, import, events): yields one object per line. */
  async *jsonStream<T = any>(res: Readable): AsyncGenerator<T> {
    for await (const line of this.lines(res)) yield JSON.parse(line) as T;
  }

  /** The raw lines of a newline-delimited JSON stream (for callers that need exact integers). */
  async *lines(res: Readable): AsyncGenerator<string> {
    let buf = '';
    for await (const chunk of res as AsyncIterable<Buffer>) {
      buf += chunk.toString('utf8');
      let i = buf.indexOf('\n');
      while (i >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) yield line;
        i = buf.indexOf('\n');
      }
    }
    const rest = buf.trim();
    if (rest) {
      // Several objects may share one line without newlines (old daemons): split them.
      for (const part of splitConcatenatedJson(rest)) yield part;
    }
  }

  /**
   * Connection hijack: POST with `Connection: Upgrade` / `Upgrade: tcp`, expect `101`, then hand
   * back the raw bidirectional socket and any bytes that came with the headers.
   */
  async hijack(
    path: string,
    opts: RequestOptions = {},
  ): Promise<{ socket: Duplex; head: Buffer; contentType: string }> {
    const headers: Record<string, string> = {
      Connection: 'Upgrade',
      Upgrade: 'tcp',
      ...(opts.headers ?? {}),
    };
    const full = await this.fullPath(path, opts);
    const body = this.bodyOf(opts, headers);
    if (body === undefined) headers['Content-Type'] ??= 'text/plain';
    const buf = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
    headers['Content-Length'] = String(buf.length);
    const { mod } = await this.transport();
    // The hijacked socket must not go back to the pool: a dedicated agent-less connection.
    const o = this.options('POST', full, headers, false);
    if (this.endpoint.tls) Object.assign(o, tlsOptions(this.endpoint.tls));
    return new Promise((resolve, reject) => {
      const req = mod.request(o);
      req.on('error', (err: NodeJS.ErrnoException) => reject(this.connectError(err)));
      req.on('upgrade', (res, socket, head) => {
        resolve({ socket, head, contentType: String(res.headers['content-type'] ?? '') });
      });
      req.on('response', async (res) => {
        if ((res.statusCode ?? 500) >= 400) reject(await errorFrom(res));
        else {
          res.resume();
          reject(new Error(`unable to upgrade to tcp, received ${res.statusCode}`));
        }
      });
      req.end(buf);
    });
  }

  close(): void {
    this.agent?.destroy();
  }
}

/** TLS client options; with `--tls` alone the server certificate is not verified (as docker). */
function tlsOptions(t: TlsFiles): https.AgentOptions {
  const o: https.AgentOptions = { rejectUnauthorized: t.verify };
  if (t.ca) o.ca = readFileSync(t.ca);
  if (t.cert) o.cert = readFileSync(t.cert);
  if (t.key) o.key = readFileSync(t.key);
  if (!t.verify) o.checkServerIdentity = () => undefined;
  return o;
}

export async function readAll(res: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Builds an ApiError from an error response: JSON `{"message"}` when so typed, else the raw text. */
export async function errorFrom(res: http.IncomingMessage): Promise<ApiError> {
  const status = res.statusCode ?? 500;
  const body = (await readAll(res)).subarray(0, 1 << 20).toString('utf8');
  const ct = String(res.headers['content-type'] ?? '');
  let message = body.trim();
  if (ct === 'application/json') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      /* keep raw */
    }
  }
  if (!message) message = `${status} ${http.STATUS_CODES[status] ?? ''}`.trim();
  return new ApiError(status, message);
}

/** Compares dotted versions numerically (`1.9` < `1.10`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

function splitConcatenatedJson(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  let inStr = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) {
        out.push(s.slice(start, i + 1));
        start = i + 1;
      }
    }
  }
  return out.map((x) => x.trim()).filter(Boolean);
}
