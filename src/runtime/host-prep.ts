/**
 * Makes this host fit for crun, idempotently, at every daemon start (see reference/machine.md):
 * on a hybrid cgroup host crun refuses to run while cgroup2 still offers a controller, so every
 * v1 controller without a mount point gets its own v1 hierarchy.
 */
import { promises as fs } from 'node:fs';
import type { DaemonConfig } from '../model/daemon-config.js';
import { run } from '../util/exec.js';
import { log } from '../util/log.js';

export async function prepareHost(_config: DaemonConfig): Promise<void> {
  const unified = '/sys/fs/cgroup/unified/cgroup.controllers';
  let controllers: string[];
  try {
    controllers = (await fs.readFile(unified, 'utf8')).split(/\s+/).filter(Boolean);
  } catch {
    return; // pure v1 or pure v2 host: nothing to do
  }
  for (const ctrl of controllers) {
    const dir = `/sys/fs/cgroup/${ctrl}`;
    try {
      await fs.mkdir(dir, { recursive: true });
      await run('mount', ['-t', 'cgroup', '-o', ctrl, 'cgroup', dir]);
      log.info('mounted cgroup v1 hierarchy for crun', { controller: ctrl });
    } catch (err) {
      log.warn('cannot mount cgroup controller; crun may refuse to run', { controller: ctrl, err });
    }
  }
}
