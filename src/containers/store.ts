/**
 * Container records on disk, under `<dataRoot>/containers/<id>/`:
 *   config.v2.json  the record, written durably (temp + fsync + rename) for what the user asked:
 *                   create, rename, stop, remove. Always complete, on any filesystem.
 *   state.json      the record as of its last run-state change (running, exited, paused), replaced
 *                   by rename without an fsync: two disk flushes fewer on every start and exit.
 *                   Used at load only when it parses and is not older than config.v2.json; after a
 *                   power loss it may be stale or empty, and then the durable record stands (no
 *                   container runs after a power loss anyway; restore reconciles with the runtime).
 */
import { promises as fs, rmSync } from 'node:fs';
import * as path from 'node:path';
import { discardDir, readJsonOr, replaceFile, sweepDiscarded, sweepTemps, writeJsonAtomic } from '../util/fsx.js';
import { log } from '../util/log.js';
import type { ContainerRecord } from '../model/container.js';

const RECORD = 'config.v2.json';
const STATE = 'state.json';

/** What makes a parsed record unusable (every code path reads these), or undefined. */
function recordProblem(id: string, rec: unknown): string | undefined {
  if (typeof rec !== 'object' || Array.isArray(rec)) return 'not an object';
  const r = rec as Partial<Record<keyof ContainerRecord, unknown>>;
  if (r.Id !== id) return `Id is ${JSON.stringify(r.Id)}`;
  if (typeof r.Name !== 'string') return 'no Name';
  for (const k of ['Config', 'HostConfig', 'State', 'NetworkSettings'] as const)
    if (typeof r[k] !== 'object' || r[k] === null || Array.isArray(r[k])) return `no ${k}`;
  return undefined;
}

export class ContainerStore {
  /** IDs whose record could not be parsed at load: skipped, but their files are left alone. */
  readonly unreadable = new Set<string>();

  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  /** Writes the record durably (fsync): for what the user asked (create, rename, stop…). */
  async save(c: ContainerRecord): Promise<void> {
    await fs.mkdir(this.dir(c.Id), { recursive: true });
    await writeJsonAtomic(path.join(this.dir(c.Id), RECORD), c);
    rmSync(path.join(this.dir(c.Id), STATE), { force: true }); // the durable record is the newest now
  }

  /** Records a run-state change, atomically but without waiting for the disk (see above). */
  async saveState(c: ContainerRecord): Promise<void> {
    await replaceFile(path.join(this.dir(c.Id), STATE), JSON.stringify(c) + '\n');
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
      let rec: ContainerRecord | null;
      try {
        rec = await readJsonOr<ContainerRecord | null>(path.join(this.dir(id), RECORD), null);
      } catch (err) {
        // Kept on disk (its layer too, see the layer sweep) for a person to look at: never deleted.
        log.warn('unreadable container record skipped', { id, err: String(err) });
        this.unreadable.add(id);
        continue;
      }
      // A directory without a record is a create that crashed half-way: remove it.
      if (rec === null) {
        await fs.rm(this.dir(id), { recursive: true, force: true });
        continue;
      }
      const problem = recordProblem(id, rec);
      if (problem) {
        log.warn('container record without the fields berthd needs skipped', { id, problem });
        this.unreadable.add(id);
        continue;
      }
      out.push((await this.newerState(id, rec)) ?? rec);
    }
    return out;
  }

  /** The state file's record, if it is readable, of this container and not older than the record. */
  private async newerState(id: string, rec: ContainerRecord): Promise<ContainerRecord | undefined> {
    const file = path.join(this.dir(id), STATE);
    try {
      const [st, rt] = await Promise.all([fs.stat(file), fs.stat(path.join(this.dir(id), RECORD))]);
      const state = JSON.parse(await fs.readFile(file, 'utf8')) as ContainerRecord;
      if (state?.Id === rec.Id && !recordProblem(id, state) && st.mtimeMs >= rt.mtimeMs) return state;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      log.warn('unreadable container state ignored; the durable record stands', { id, err: String(err) });
    }
    await fs.rm(file, { force: true });
    return undefined;
  }
}
