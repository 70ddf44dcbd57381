/** Container records on disk: `<dataRoot>/containers/<id>/config.v2.json`, written atomically. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { discardDir, readJsonOr, replaceFile, sweepDiscarded, sweepTemps, writeJsonAtomic } from '../util/fsx.js';
import { log } from '../util/log.js';
import type { ContainerRecord } from './types.js';

export class ContainerStore {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  /** Writes the record durably (fsync): for what the user asked (create, rename, stop…). */
  async save(c: ContainerRecord): Promise<void> {
    await fs.mkdir(this.dir(c.Id), { recursive: true });
    await writeJsonAtomic(path.join(this.dir(c.Id), 'config.v2.json'), c);
  }

  /**
   * Writes a run-state change (running, exited, paused, removing) atomically but without an fsync:
   * after a power loss no container runs anyway, and restore reconciles the state with the
   * runtime. Keeps two disk flushes off every start and exit.
   */
  async saveState(c: ContainerRecord): Promise<void> {
    await replaceFile(path.join(this.dir(c.Id), 'config.v2.json'), JSON.stringify(c, null, 2) + '\n');
  }

  async remove(id: string): Promise<void> {
    discardDir(this.dir(id)); // gone at once; its files (logs can be large) go in the background
  }

  async loadAll(): Promise<ContainerRecord[]> {
    await fs.mkdir(this.root, { recursive: true });
    await sweepDiscarded(this.root);
    const out: ContainerRecord[] = [];
    for (const id of await fs.readdir(this.root)) {
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      await sweepTemps(this.dir(id));
      const rec = await readJsonOr<ContainerRecord | null>(path.join(this.dir(id), 'config.v2.json'), null).catch((err) => {
        log.warn('unreadable container record skipped', { id, err });
        return null;
      });
      // A directory without a record is a create that crashed half-way: remove it.
      if (rec) out.push(rec);
      else await fs.rm(this.dir(id), { recursive: true, force: true });
    }
    return out;
  }
}
