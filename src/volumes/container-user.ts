/**
 * `docker cp -a`: the container's user as numbers, read from the container's own passwd and group
 * through its filesystem view (volumes and binds included), resolved as `util/passwd.ts` does.
 */
import { promises as fs } from 'node:fs';
import { resolveUserIn } from '../util/passwd.js';
import { type ContainerView, withAnchor } from './scope.js';

/** `user` as `Config.User` holds it (`name`, `uid`, `name:group`, `uid:gid`); root when empty. */
export async function containerUser(user: string, view: ContainerView): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 };
  const read = async (file: string) => {
    const loc = await view.resolve(file, true);
    return withAnchor(loc, (q) => fs.readFile(q, 'utf8')).catch(() => '');
  };
  const { uid, gid } = resolveUserIn(user, await read('/etc/passwd'), await read('/etc/group'));
  return { uid, gid };
}
