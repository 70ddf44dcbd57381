/**
 * A container's `User` (`name`, `uid`, `name:group`, `uid:gid`) resolved against its own
 * `/etc/passwd` and `/etc/group`, as Docker resolves it; callers read the files their own way.
 */
import { invalid } from './errors.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

function rows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

/** Root when `user` is empty; a numeric uid not in passwd is taken as it is (home `/`). */
export function resolveUserIn(user: string, passwdText: string, groupText: string): ResolvedUser {
  const [u, g] = user ? user.split(':', 2) : ['', undefined];
  const passwd = rows(passwdText);
  const groups = rows(groupText);
  let uid = 0;
  let gid = 0;
  let home = '/root';
  let name = 'root';
  if (u) {
    const entry = /^\d+$/.test(u) ? passwd.find((p) => p[2] === u) : passwd.find((p) => p[0] === u);
    if (entry) {
      uid = Number(entry[2]);
      gid = Number(entry[3]);
      home = entry[5] || '/';
      name = entry[0];
    } else if (/^\d+$/.test(u)) {
      uid = Number(u);
      home = '/';
      name = '';
    } else {
      throw invalid(`unable to find user ${u}: no matching entries in passwd file`);
    }
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const ge = groups.find((x) => x[0] === g);
      if (!ge) throw invalid(`unable to find group ${g}: no matching entries in group file`);
      gid = Number(ge[2]);
    }
  }
  const additionalGids = name
    ? groups.filter((x) => (x[3] ?? '').split(',').includes(name) && Number(x[2]) !== gid).map((x) => Number(x[2]))
    : [];
  return { uid, gid, additionalGids, home };
}
