/**
 * Runs `mount`/`umount` through one long-lived shell instead of a new process per call: spawning
 * from Node costs 18–60 ms here, a fork/exec from a waiting shell 4 ms (busybox's static mount and
 * umount; util-linux's are dynamically linked and slower). Commands are serialised; the shell is
 * restarted if it dies and exits when berthd does (its stdin closes).
 */
import { existsSync } from 'node:fs';
import { systemError } from '../util/errors.js';
import { quote, ShellPool } from '../util/shell-pool.js';

const BUSYBOX = '/bin/busybox';

export class Mounter {
  /** One shell: mount operations are serialised. */
  private readonly shells = new ShellPool(1);
  private readonly tools = existsSync(BUSYBOX)
    ? { mount: `${BUSYBOX} mount`, umount: `${BUSYBOX} umount` }
    : { mount: 'mount', umount: 'umount' };

  /** Runs one command line (words quoted by the caller) in `cwd`; returns its exit code and output. */
  private exec(words: string[], cwd: string): Promise<{ code: number; output: string }> {
    return this.shells.runLine(`cd ${quote(cwd)} && ${words.join(' ')}`);
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
    this.shells.close();
  }
}
