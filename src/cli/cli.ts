/** What every command gets: the API client for the chosen host, output streams, docker-style errors. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { ApiError, EngineClient, parseHost, type TlsFiles } from '../client/client.js';

export const DEFAULT_HOST = 'unix:///run/berth/berth.sock';
export const PROG = 'berth';

/** An error that ends the CLI with a given exit status (message printed as is when not empty). */
export class StatusError extends Error {
  constructor(
    readonly status: number,
    message = '',
  ) {
    super(message);
  }
}

export interface GlobalOptions {
  host?: string[];
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
  config?: string;
}

export class Cli {
  private cachedClient?: EngineClient;

  constructor(readonly globals: GlobalOptions) {}

  /** `-H`, else BERTH_HOST, else DOCKER_HOST, else the default socket. */
  get host(): string {
    const h = this.globals.host;
    if (h && h.length > 1) throw new StatusError(1, 'Specify only one -H');
    return h?.[0] || process.env.BERTH_HOST || process.env.DOCKER_HOST || DEFAULT_HOST;
  }

  get configDir(): string {
    return this.globals.config || process.env.DOCKER_CONFIG || path.join(homedir(), '.docker');
  }

  tlsFiles(): TlsFiles | undefined {
    const g = this.globals;
    const envVerify = !!process.env.DOCKER_TLS_VERIFY;
    const verify = !!g.tlsverify || envVerify;
    const certDir = process.env.DOCKER_CERT_PATH || this.configDir;
    const anyFile = g.tlscacert || g.tlscert || g.tlskey;
    if (!g.tls && !verify && !anyFile) return undefined;
    const pick = (given: string | undefined, name: string) => {
      if (given) return given;
      const p = path.join(certDir, name);
      return existsSync(p) ? p : undefined;
    };
    return {
      verify,
      ca: pick(g.tlscacert, 'ca.pem'),
      cert: pick(g.tlscert, 'cert.pem'),
      key: pick(g.tlskey, 'key.pem'),
    };
  }

  get client(): EngineClient {
    if (!this.cachedClient) {
      const host = this.host;
      const tls = host.startsWith('unix://') ? undefined : this.tlsFiles();
      this.cachedClient = new EngineClient(parseHost(host, tls), {
        version: process.env.DOCKER_API_VERSION || undefined,
      });
    }
    return this.cachedClient;
  }

  out(s: string): void {
    process.stdout.write(s);
  }

  err(s: string): void {
    process.stderr.write(s);
  }
}

/** The message docker prints for an error. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return `Error response from daemon: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Runs `fn` for each target, printing what it returns; errors are collected (docker's multi-target commands). */
export async function forEach(
  cli: Cli,
  targets: string[],
  fn: (t: string) => Promise<string | undefined>,
): Promise<void> {
  const errs: string[] = [];
  for (const t of targets) {
    try {
      const out = await fn(t);
      if (out !== undefined) cli.out(out + '\n');
    } catch (err) {
      if (!(err instanceof ApiError) && !(err instanceof StatusError)) throw err;
      errs.push(errorMessage(err));
    }
  }
  if (errs.length) throw new StatusError(1, errs.join('\n'));
}

/** Collector for repeatable options. */
export function collect(v: string, prev: string[] = []): string[] {
  return prev.concat([v]);
}

/** `KEY=VALUE` flag values (`--label`, `--opt`…) as an object; a bare `KEY` maps to ''. */
export function keyValues(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i < 0) out[item] = '';
    else out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}
