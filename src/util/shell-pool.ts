/**
 * Runs short host commands through a few long-lived shells instead of a new process per call:
 * spawning from Node costs 18–60 ms on these machines (it forks the whole daemon), a fork/exec
 * from a waiting shell a few. Each shell runs one command at a time; a pool lets calls for
 * different containers overlap. A shell that dies is replaced; idle shells do not keep the event
 * loop alive, and they exit with berthd (their stdin closes).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { holdProcess } from './child-ref.js';

export const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Result {
  code: number;
  output: string;
}

class PooledShell {
  private proc?: ChildProcessWithoutNullStreams;
  private buf = '';
  private waiter?: (r: Result) => void;
  busy = false;

  constructor(private readonly marker: string) {}

  private shell(): ChildProcessWithoutNullStreams {
    if (this.proc && this.proc.exitCode === null && !this.proc.killed) return this.proc;
    // /bin/sh, not busybox's: a static busybox shell runs its own applets (`ip`, `mount`…) before
    // the tools on PATH, so callers name busybox explicitly where they want it.
    const proc = spawn('/bin/sh', [], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      this.buf += chunk;
      const i = this.buf.indexOf(this.marker);
      if (i === -1) return;
      const nl = this.buf.indexOf('\n', i);
      if (nl === -1) return;
      const output = this.buf.slice(0, i);
      const code = Number(this.buf.slice(i + this.marker.length, nl));
      this.buf = this.buf.slice(nl + 1);
      const w = this.waiter;
      this.waiter = undefined;
      w?.({ code, output });
    });
    proc.stderr.resume();
    proc.on('exit', () => {
      const w = this.waiter;
      this.waiter = undefined;
      this.buf = '';
      w?.({ code: 255, output: 'the command shell exited' });
    });
    proc.stdin.on('error', () => {});
    this.proc = proc;
    holdProcess(this.proc, false);
    return proc;
  }

  run(line: string): Promise<Result> {
    this.busy = true;
    return new Promise((resolve) => {
      const sh = this.shell();
      holdProcess(this.proc, true);
      this.waiter = (r) => {
        holdProcess(this.proc, false);
        this.busy = false;
        resolve(r);
      };
      sh.stdin.write(`{ ${line} ; } 2>&1 </dev/null; echo "${this.marker}$?"\n`);
    });
  }

  close(): void {
    this.proc?.stdin.end();
  }
}

export class ShellPool {
  private readonly shells: PooledShell[];
  private readonly waiting: (() => void)[] = [];

  constructor(size = 4) {
    const marker = `@@berth-${randomBytes(6).toString('hex')}=`;
    this.shells = Array.from({ length: size }, () => new PooledShell(marker));
  }

  /** Runs `words` (quoted here) and returns the exit code and combined output. */
  async run(words: string[]): Promise<Result> {
    return this.runLine(words.map(quote).join(' '));
  }

  /** Runs a raw shell line (the caller quotes). */
  async runLine(line: string): Promise<Result> {
    let shell = this.shells.find((s) => !s.busy);
    while (!shell) {
      await new Promise<void>((r) => this.waiting.push(r));
      shell = this.shells.find((s) => !s.busy);
    }
    try {
      return await shell.run(line);
    } finally {
      this.waiting.shift()?.();
    }
  }

  close(): void {
    for (const s of this.shells) s.close();
  }
}
