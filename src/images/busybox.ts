/**
 * The default `busybox` image, made from Debian's busybox-static: the binary once, every applet
 * of `busybox --list-full` as a hard link to it, `/etc/passwd` and `/etc/group` with root, an
 * unprivileged `user` (1000) and `nobody` (65534), `/tmp` (1777), `/root`, `/home`.
 * Reproducible: entries sorted, fixed owners and mtimes, a fixed `created`, so the same
 * busybox-static gives the same layer digest and image ID on every machine.
 */
import { goArch } from '../util/platform.js';
import { promises as fs } from 'node:fs';
import { run } from '../util/exec.js';
import { addEntry, pack, type TarHeader } from '../layers/tar.js';
import type { ImageConfig } from './index.js';

export const BUSYBOX_PATH = '/bin/busybox';
/** The fixed time of every entry and of the image itself. */
export const EPOCH = new Date('2024-01-01T00:00:00Z');

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
`;
const GROUP = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
tty:x:5:
wheel:x:10:root
users:x:100:
user:x:1000:
nogroup:x:65534:
`;

export async function busyboxVersion(bin = BUSYBOX_PATH): Promise<string> {
  const r = await run(bin, ['--help'], { allowFail: true });
  const m = /BusyBox (v\S+(?: \([^)]*\))?)/.exec(r.stdout + r.stderr);
  return m ? m[1] : 'unknown';
}

/** The layer tar, in memory (busybox-static is about 2 MB). */
export async function busyboxLayer(bin = BUSYBOX_PATH): Promise<Buffer> {
  const binary = await fs.readFile(bin);
  const list = (await run(bin, ['--list-full'])).stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== 'linuxrc' && !l.includes('..') && !l.startsWith('/'));
  type Node = TarHeader & { body?: Buffer };
  const nodes = new Map<string, Node>();
  const base = { uid: 0, gid: 0, mtime: EPOCH, uname: '', gname: '' };
  const dir = (name: string, mode = 0o755, uid = 0, gid = 0) =>
    nodes.set(name, { ...base, name, type: 'directory', mode, uid, gid });
  for (const d of [
    'bin',
    'dev',
    'etc',
    'home',
    'proc',
    'sbin',
    'sys',
    'usr',
    'usr/bin',
    'usr/sbin',
    'var',
    'var/spool',
    'var/spool/mail',
    'var/www',
  ])
    dir(d);
  dir('root', 0o700);
  dir('tmp', 0o1777);
  dir('home/user', 0o755, 1000, 1000);
  const file = (name: string, body: Buffer, mode = 0o644) =>
    nodes.set(name, { ...base, name, type: 'file', mode, size: body.length, body });
  file('etc/passwd', Buffer.from(PASSWD));
  file('etc/group', Buffer.from(GROUP));
  file(
    'etc/shadow',
    Buffer.from(
      PASSWD.split('\n')
        .filter(Boolean)
        .map((l) => `${l.split(':')[0]}:*::0:::::`)
        .join('\n') + '\n',
    ),
    0o640,
  );
  file('etc/hostname', Buffer.from('busybox\n'));
  file('etc/nsswitch.conf', Buffer.from('hosts: files dns\nnetworks: files\npasswd: files\ngroup: files\n'));
  const applets = [...new Set(list)].sort();
  for (const a of applets) {
    const parts = a.split('/');
    for (let i = 1; i < parts.length; i++)
      if (!nodes.has(parts.slice(0, i).join('/'))) dir(parts.slice(0, i).join('/'));
  }
  // The first applet path in sort order carries the binary; the others are hard links to it.
  const sortedApplets = applets.filter((a) => !nodes.has(a));
  const names = [...nodes.keys(), ...sortedApplets].sort();
  const first = names.find((n) => sortedApplets.includes(n));
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (b: Buffer) => chunks.push(b));
  const ended = new Promise((r) => p.on('end', r));
  for (const name of names) {
    const n = nodes.get(name);
    if (n) {
      const { body, ...h } = n;
      await addEntry(p, h, body);
    } else if (name === first) {
      await addEntry(p, { ...base, name, type: 'file', mode: 0o755, size: binary.length }, binary);
    } else {
      await addEntry(p, { ...base, name, type: 'link', linkname: first, mode: 0o755, size: 0 });
    }
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

export function busyboxConfig(diffId: string, version: string): Buffer {
  const created = EPOCH.toISOString().replace('.000Z', 'Z');
  const config: ImageConfig = {
    architecture: goArch(),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['sh'],
    },
    created,
    history: [
      {
        created,
        created_by: `berth: busybox-static ${version} from ${BUSYBOX_PATH}`,
        comment: 'made locally by berthd',
      },
      { created, created_by: 'CMD ["sh"]', empty_layer: true },
    ],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [diffId] },
  };
  return Buffer.from(JSON.stringify(config));
}
