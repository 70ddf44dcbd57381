/**
 * Removes what a test daemon left on the host under `base`: runtime containers (by its private
 * crun/runc root), the monitors it started (by recorded PID), mounts below `base`, network
 * namespaces and links named with its instance tag, and the files.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCmd } from './run.js';

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

async function pidsFrom(dir: string, file: string): Promise<number[]> {
  const out: number[] = [];
  let names: string[] = [];
  try {
    names = await fs.readdir(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const p = path.join(dir, n, file);
    if (existsSync(p)) {
      const pid = Number(readFileSync(p, 'utf8').trim());
      // Only a live conmon: a recorded PID of a monitor that exited may belong to another process now.
      if (pid > 1 && readComm(pid) === 'conmon') out.push(pid);
    }
  }
  return out;
}

export async function cleanupRoot(base: string): Promise<void> {
  const execRoot = path.join(base, 'run');
  // Containers in this daemon's private runtime roots.
  for (const rt of ['crun', 'runc']) {
    const root = path.join(execRoot, rt);
    if (!existsSync(root)) continue;
    const r = await runCmd(rt, ['--root', root, 'list', '-q'], { timeoutMs: 10_000 }).catch(() => undefined);
    for (const id of (r?.stdout ?? '').split('\n').filter(Boolean)) {
      await runCmd(rt, ['--root', root, 'kill', id, 'KILL'], { timeoutMs: 10_000 }).catch(() => {});
      await runCmd(rt, ['--root', root, 'delete', '-f', id], { timeoutMs: 10_000 }).catch(() => {});
    }
  }
  // Monitors (conmon) started by this daemon: PIDs recorded per container.
  for (const pid of [...(await pidsFrom(path.join(execRoot, 'b'), 'conmon.pid')), ...(await pidsFrom(path.join(execRoot, 'x'), 'conmon.pid'))]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  // Mounts below base, deepest first.
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === base || m.startsWith(base + '/')))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await runCmd('umount', ['-l', m], { timeoutMs: 10_000 }).catch(() => {});
  // Network objects named after this daemon's instance tag (see daemon/config.ts).
  const instance = createHash('sha256').update(path.join(base, 'data')).digest('hex').slice(0, 6);
  // The daemon's cgroup parent (`berth-<instance>`, see daemon/config.ts) in every hierarchy.
  for (const h of await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    const parent = path.join('/sys/fs/cgroup', h, `berth-${instance}`);
    const kids = await fs.readdir(parent, { withFileTypes: true }).catch(() => []);
    for (const k of kids) if (k.isDirectory()) await fs.rmdir(path.join(parent, k.name)).catch(() => {});
    await fs.rmdir(parent).catch(() => {});
  }
  const hooks = await import('./network-cleanup.js').catch(() => undefined);
  if (hooks) await hooks.cleanupNetwork(instance, base);
  await fs.rm(base, { recursive: true, force: true });
}
