/** `docker cp -a`: the container's user as numbers, read from the container's own passwd and group. */
import { promises as fs } from 'node:fs';
import { invalid } from '../util/errors.js';
import { type ContainerView, withAnchor } from './scope.js';

/** `user` as `Config.User` holds it (`name`, `uid`, `name:group`, `uid:gid`); root when empty. */
export async function containerUser(
  user: string,
  view: ContainerView,
): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(':');
  const read = async (file: string) => {
    const loc = await view.resolve(file, true);
    return (await withAnchor(loc, (q) => fs.readFile(q, 'utf8')).catch(() => ''))
      .split('\n')
      .map((l) => l.split(':'));
  };
  let uid = Number(u);
  let gid = 0;
  if (!/^\d+$/.test(u)) {
    const row = (await read('/etc/passwd')).find((r) => r[0] === u);
    if (!row) throw invalid(`unable to find user ${u}: no matching entries in passwd file`);
    uid = Number(row[2]);
    gid = Number(row[3]);
  } else {
    const row = (await read('/etc/passwd')).find((r) => r[2] === u);
    if (row) gid = Number(row[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = (await read('/etc/group')).find((r) => r[0] === g);
      if (!row) throw invalid(`unable to find group ${g}: no matching entries in group file`);
      gid = Number(row[2]);
    }
  }
  return { uid, gid };
}
