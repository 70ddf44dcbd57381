/**
 * Paths inside a root (a build context, a mounted image filesystem) resolved the way a chroot
 * would: symlinks are followed, but `..` and absolute targets never leave the root.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { invalid } from '../util/errors.js';

const MAX_LINKS = 40;

/**
 * The host path of `rel` (absolute or relative to `root`) with every symlink on the way resolved
 * inside `root`; with `followLast: false` a symlink as the last component is kept (COPY copies
 * links themselves). Missing components are fine: the rest is appended as is.
 */
export async function resolveScoped(
  root: string,
  rel: string,
  opts: { followLast?: boolean } = {},
): Promise<string> {
  const followLast = opts.followLast ?? true;
  const pending = rel.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, part);
    if (pending.length === 0 && !followLast) {
      done.push(part);
      break;
    }
    const st = await fs.lstat(host).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw invalid(`too many levels of symbolic links: ${rel}`);
      const target = await fs.readlink(host);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
      continue;
    }
    done.push(part);
  }
  return path.join(root, ...done);
}
