/**
 * Runs `mount`/`umount` through one long-lived shell instead of a new process per call: spawning
 * from Node costs 18–60 ms here, a fork/exec from a waiting shell 4 ms (busybox's static mount and
 * umount; util-linux's are dynamically linked and slower). Commands are serialised; the shell is
 * restarted if it dies and exits when berthd does (its stdin closes).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { systemError } from '../util/errors.js';

const BUSYBOX = '/bin/busybox';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class Mounter {
  private proc?: ChildProcessWithoutNullStreams;
  private queue: Promise<unknown> = Promise.resolve();
  private buf = '';
  private waiter?: (line: { code: number; output: string }) => void;
  private readonly marker = `@@berth-${randomBytes(6).toString('hex')}=`;
  private readonly tools = existsSync(BUSYBOX)
    ? { mount: `${BUSYBOX} mount`, umount: `${BUSYBOX} umount` }
    : { mount: 'mount', umount: 'umount' };

  private shell(): ChildProcessWithoutNullStreams {
    if (this.proc && this.proc.exitCode === null && !this.proc.killed) return this.proc;
    const proc = spawn(existsSync(BUSYBOX) ? BUSYBOX : '/bin/sh', existsSync(BUSYBOX) ? ['sh'] : [], {
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
      w?.({ code: 255, output: 'the mount helper shell exited' });
    });
    proc.stdin.on('error', () => {});
    this.proc = proc;
    this.hold(false);
    return proc;
  }

  /** While a command runs the shell keeps Node's event loop alive; idle, it does not. */
  private hold(on: boolean): void {
    const p = this.proc;
    if (!p) return;
    for (const x of [p, p.stdin, p.stdout, p.stderr] as unknown as {
      ref?: () => void;
      unref?: () => void;
    }[]) {
      if (on) x.ref?.();
      else x.unref?.();
    }
  }

  /** Runs one command line (words quoted here) in `cwd`; returns its exit code and output. */
  private exec(words: string[], cwd: string): Promise<{ code: number; output: string }> {
    const next = this.queue.then(
      () =>
        new Promise<{ code: number; output: string }>((resolve) => {
          const sh = this.shell();
          this.hold(true);
          this.waiter = (r) => {
            this.hold(false);
            resolve(r);
          };
          sh.stdin.write(`cd ${quote(cwd)} && ${words.join(' ')} 2>&1; echo "${this.marker}$?"\n`);
        }),
    );
    this.queue = next.catch(() => {});
    return next;
  }

  async mount(source: string, target: string, fstype: string, options: string, cwd: string): Promise<void> {
    const r = await this.exec(
      [this.tools.mount, '-t', quote(fstype), '-o', quote(options), quote(source), quote(target)],
      cwd,
    );
    if (r.code !== 0) throw systemError(`mount ${target}: ${r.output.trim() || `exit ${r.code}`}`);
  }

  /** Unmounts; `lazy` detaches a busy mount (MNT_DETACH). */
  async umount(target: string, lazy = false): Promise<{ code: number; output: string }> {
    return this.exec([this.tools.umount, ...(lazy ? ['-l'] : []), quote(target)], '/');
  }

  close(): void {
    this.proc?.stdin.end();
  }
}
