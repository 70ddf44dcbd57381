/**
 * The volume layer's records, each file written atomically: volume metadata
 * (`volume-state/volumes/<name>.json`) and each container's mount plan
 * (`volume-state/containers/<id>.json`, with whether it is mounted). For local volumes the
 * directory is the truth: metadata without a directory is dropped at open, a directory without
 * metadata (a crash between the two writes) is adopted, as Docker does.
 */
import { existsSync, promises as fs, rmSync } from 'node:fs';
import * as path from 'node:path';
import { readJsonOr, sweepTemps, writeJsonAtomic } from '../util/fsx.js';
import type { LocalDriver } from './local.js';
import type { PlannedMount } from './specs.js';

export interface VolumeMeta {
  Name: string;
  Driver: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  CreatedAt: string;
}

export interface ContainerPlan {
  id: string;
  mounts: PlannedMount[];
  mounted: boolean;
}

/** Docker's `CreatedAt`: RFC 3339 with seconds and the zone (`2026-11-27T20:31:20Z`). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class VolumeRecords {
  readonly metas = new Map<string, VolumeMeta>();
  readonly plans = new Map<string, ContainerPlan>();
  private readonly metaDir: string;
  private readonly planDir: string;

  constructor(stateDir: string) {
    this.metaDir = path.join(stateDir, 'volumes');
    this.planDir = path.join(stateDir, 'containers');
  }

  async open(local: LocalDriver): Promise<void> {
    await fs.mkdir(this.metaDir, { recursive: true });
    await fs.mkdir(this.planDir, { recursive: true });
    await sweepTemps(this.metaDir);
    await sweepTemps(this.planDir);
    for (const f of await fs.readdir(this.metaDir)) {
      if (!f.endsWith('.json')) continue;
      const m = await readJsonOr<VolumeMeta | null>(path.join(this.metaDir, f), null).catch(() => null);
      if (!m?.Name) continue;
      if (m.Driver === 'local' && !existsSync(local.dir(m.Name))) {
        await fs.rm(path.join(this.metaDir, f), { force: true });
        continue;
      }
      this.metas.set(m.Name, m);
    }
    for (const name of await local.names()) {
      if (this.metas.has(name)) continue;
      const st = await fs.stat(local.dir(name));
      const m: VolumeMeta = {
        Name: name,
        Driver: 'local',
        Labels: {},
        Options: {},
        CreatedAt: rfc3339(st.ctime),
      };
      const o = await local.opts(name);
      if (o) {
        if (o.MountType) m.Options.type = o.MountType;
        if (o.MountOpts) m.Options.o = o.MountOpts;
        if (o.MountDevice) m.Options.device = o.MountDevice;
      }
      await this.saveMeta(m);
      this.metas.set(name, m);
    }
    for (const f of await fs.readdir(this.planDir)) {
      if (!f.endsWith('.json')) continue;
      const p = await readJsonOr<ContainerPlan | null>(path.join(this.planDir, f), null).catch(() => null);
      if (p?.id) this.plans.set(p.id, p);
    }
  }

  metaFile(name: string): string {
    return path.join(this.metaDir, `${name}.json`);
  }

  saveMeta(m: VolumeMeta): Promise<void> {
    return writeJsonAtomic(this.metaFile(m.Name), m);
  }

  async savePlan(p: ContainerPlan): Promise<void> {
    this.plans.set(p.id, p);
    await writeJsonAtomic(path.join(this.planDir, `${p.id}.json`), p);
  }

  /**
   * Records whether a plan's volumes are mounted (start, exit). Durably, as the plan also names the
   * container's anonymous volumes; but only for plans with volumes: without, there is nothing to
   * record, and most containers start and stop without this write.
   */
  async saveMounted(p: ContainerPlan): Promise<void> {
    if (!p.mounts.some((m) => m.type === 'volume')) return;
    await this.savePlan(p);
  }

  async dropPlan(id: string): Promise<void> {
    this.plans.delete(id);
    rmSync(path.join(this.planDir, `${id}.json`), { force: true }); // direct: cheaper than the threadpool
  }
}
