/**
 * mount/umount for the overlay store. Through the resident mount helper (mount-helper.ts: direct
 * syscalls, no process per call) when python3 is there; otherwise through one long-lived shell
 * running busybox's static mount and umount (a fork/exec from a waiting shell costs ≈ 4 ms, a spawn
 * from Node 18–60 ms). Calls are serialised either way.
 */
import { existsSync } from 'node:fs';
import { systemError } from '../util/errors.js';
import { quote, ShellPool } from '../util/shell-pool.js';
import { MountHelper } from './mount-helper.js';

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

  private readonly helper = MountHelper.available() ? new MountHelper() : undefined;

  async mount(source: string, target: string, fstype: string, options: string, cwd: string): Promise<void> {
    if (this.helper) {
      const h = await this.helper.run({ op: 'mount', source, target, fstype, data: options, cwd });
      if (h.code !== 0) throw systemError(`mount ${target}: ${h.output || `exit ${h.code}`}`);
      return;
    }
    const r = await this.exec(
      [this.tools.mount, '-t', quote(fstype), '-o', quote(options), quote(source), quote(target)],
      cwd,
    );
    if (r.code !== 0) throw systemError(`mount ${target}: ${r.output.trim() || `exit ${r.code}`}`);
  }

  /** Unmounts; `lazy` detaches a busy mount (MNT_DETACH). */
  async umount(target: string, lazy = false): Promise<{ code: number; output: string }> {
    if (this.helper) return this.helper.run({ op: 'umount', target, lazy });
    return this.exec([this.tools.umount, ...(lazy ? ['-l'] : []), quote(target)], '/');
  }

  close(): void {
    this.helper?.close();
    this.shells.close();
  }
}
