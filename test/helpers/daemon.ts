/**
 * Starts a real berthd on a private data root, exec root and socket for a test, and tears down
 * everything it made (containers, monitors, mounts, network objects, files), also on failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupRoot } from './cleanup.js';
import { type RunResult, runCmd } from './run.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BERTHD = path.join(REPO, 'bin', 'berthd');
export const BERTH = path.join(REPO, 'bin', 'berth');
export const DOCKER = '/usr/local/bin/docker';

export interface DaemonOptions {
  /** Extra berthd flags. */
  args?: string[];
  /** Reuse roots (for restart tests). */
  base?: string;
  /** A command berthd runs under (e.g. `nsenter --net=…` for a "host" in its own network namespace). */
  wrap?: string[];
}

export class TestDaemon {
  proc?: ChildProcess;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly socket: string;
  readonly host: string;
  readonly dockerConfig: string;
  logs = '';

  constructor(
    readonly base: string,
    readonly args: string[],
    readonly wrap: string[] = [],
  ) {
    this.dataRoot = path.join(base, 'data');
    this.execRoot = path.join(base, 'run');
    this.socket = path.join(base, 'berth.sock');
    this.host = `unix://${this.socket}`;
    this.dockerConfig = path.join(base, 'docker-config');
  }

  /** Environment for docker/berth CLIs pointed at this daemon (never the user's ~/.docker). */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_HOST: this.host, BERTH_HOST: this.host, DOCKER_CONFIG: this.dockerConfig, DOCKER_BUILDKIT: '0', ...extra };
  }

  async start(): Promise<void> {
    await fs.mkdir(this.dockerConfig, { recursive: true });
    const proc = spawn(
      this.wrap[0] ?? BERTHD, // through its shebang, which carries berthd's V8 flags
      [...(this.wrap.length ? [...this.wrap.slice(1), BERTHD] : []), '--data-root', this.dataRoot, '--exec-root', this.execRoot, '-H', this.host, '--no-dns-forward', '--config-file', path.join(this.base, 'daemon.json'), ...this.args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (!existsSync(path.join(this.base, 'daemon.json'))) await fs.writeFile(path.join(this.base, 'daemon.json'), '{}\n');
    this.proc = proc;
    proc.stdout!.on('data', (b: Buffer) => (this.logs += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (this.logs += b.toString()));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`berthd exited with ${proc.exitCode}:\n${this.logs}`);
      const r = await runCmd(DOCKER, ['version', '--format', '{{.Server.Version}}'], { env: this.env(), timeoutMs: 5000 }).catch(() => undefined);
      if (r && r.code === 0) return;
      await new Promise((r2) => setTimeout(r2, 100));
    }
    throw new Error(`berthd did not come up:\n${this.logs}`);
  }

  /** SIGTERM and wait (containers keep running: live restore). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
    clearTimeout(timer);
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await done;
    }
  }

  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal);
    await this.start();
  }

  docker(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
    return runCmd(DOCKER, args, { ...opts, env: this.env(opts.env) });
  }

  berth(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
    // Through its shebang, as a user runs it (it sets the CLI's own Node options).
    return runCmd(BERTH, args, { ...opts, env: this.env(opts.env) });
  }

  /** Stops the daemon and removes every trace of it from the host. */
  async destroy(): Promise<void> {
    await this.stop();
    await cleanupRoot(this.base);
  }
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  const base = opts.base ?? mkdtempSync(path.join(tmpdir(), 'berth-test-'));
  const d = new TestDaemon(base, opts.args ?? [], opts.wrap ?? []);
  try {
    await d.start();
  } catch (err) {
    await d.destroy();
    throw err;
  }
  return d;
}

/** For debugging a failed test: the daemon's log so far. */
export function daemonLog(d: TestDaemon): string {
  return d.logs || (existsSync(path.join(d.base, 'log')) ? readFileSync(path.join(d.base, 'log'), 'utf8') : '');
}
