/**
 * crun and runc copy their own binary to a temporary file and re-execute that copy on every call,
 * so that a container can never overwrite the host's runtime through /proc/self/exe
 * (CVE-2019-5736). Here that is a 480 KB file written to /tmp and deleted again per call, about
 * 7 ms and a share of the kernel's writeback work. Both skip the copy when they run from a
 * read-only mount and `_LIBCONTAINER_CLONED_BINARY` is set: the same protection, since nothing can
 * be written through a read-only mount. This module provides that mount: a read-only bind mount of
 * the runtime binary under the exec root, made once and kept for the next daemon (live restore).
 */
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { log } from '../util/log.js';
import { quote, type ShellPool } from '../util/shell-pool.js';

/** The variable a runtime started from a read-only mount needs to trust it (set to 1). */
export const SEALED_ENV = '_LIBCONTAINER_CLONED_BINARY';

/** Mount points (decoded) that are mounted read-only, from /proc/self/mountinfo. */
function readOnlyMounts(): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    if (f[5].split(',').includes('ro'))
      out.add(f[4].replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([fs.stat(a), fs.stat(b)]).catch(() => [undefined, undefined]);
  return !!x && !!y && x.dev === y.dev && x.ino === y.ino;
}

/**
 * Returns the read-only bind mount of `binary` under `<dir>/`, making it when missing or when it
 * holds an older binary (a package upgrade replaced the file); undefined when it cannot be made,
 * and callers then run the binary itself.
 */
export async function sealedBinary(
  binary: string,
  dir: string,
  shells: ShellPool,
): Promise<string | undefined> {
  // Named after the whole path: two configured runtimes may share a file name.
  const target = path.join(dir, `${path.basename(binary)}-${createHash('sha256').update(binary).digest('hex').slice(0, 8)}`);
  try {
    if (readOnlyMounts().has(target) && (await sameFile(binary, target))) return target;
    await fs.mkdir(dir, { recursive: true });
    if (readOnlyMounts().has(target) || (await sameFile(binary, target)))
      await shells.run(['umount', '-l', target]);
    await fs.writeFile(target, '', { flag: 'a' });
    const r = await shells.runLine(
      `mount --bind ${quote(binary)} ${quote(target)} && mount -o remount,bind,ro ${quote(target)}`,
    );
    if (r.code !== 0) throw new Error(r.output.trim());
    return target;
  } catch (err) {
    log.warn('cannot make a read-only mount of the runtime binary; it will copy itself on every call', {
      binary,
      err,
    });
    await shells.run(['umount', '-l', target]).catch(() => {});
    return undefined;
  }
}
