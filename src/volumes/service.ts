/**
 * The volume service: named and anonymous volumes (the `local` driver and plugins), the mount
 * plan of each container (binds, volumes, tmpfs, --volumes-from), and their life cycle around
 * container create/start/stop/remove.
 *
 * State under the data root: `volumes/<name>/_data` (local volume data, Docker's layout,
 * `volumes/<name>/opts.json`) and the records in `volume-state/` (`records.ts`).
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ContainerDirectory } from '../model/container-directory.js';
import type { ContainerRecord, MountPoint } from '../model/container.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import type { Filters } from '../model/filters.js';
import type { EventBus } from '../model/events.js';
import { BerthError, conflict, errnoCode, invalid, notFound, systemError } from '../util/errors.js';
import { newId } from '../util/ids.js';
import { log } from '../util/log.js';
import type {
  CreateVolumeRequest,
  OciMount,
  ResolvedMounts,
  Volume,
  VolumeService,
} from './index.js';
import { containerUser } from './container-user.js';
import { listFilter, pruneFilter } from './filters.js';
import { type ContainerPlan, rfc3339, type VolumeMeta, VolumeRecords } from './records.js';
import { LocalDriver } from './local.js';
import { mountPoints, plannedFromMounts } from './mount-points.js';
import { PluginRegistry, type PluginVolume } from './plugins.js';
import { ContainerView, secureLstat, type ViewMount } from './scope.js';
import {
  byDepth,
  ociOptions,
  type PlannedMount,
  parseBind,
  parseMountSpec,
  parseTmpfs,
  parseVolumesFrom,
  validateAnyName,
} from './specs.js';

export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

export interface VolumeServiceOptions {
  config: DaemonConfig;
  events: EventBus;
  containers: ContainerDirectory;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class LocalVolumeService implements VolumeService {
  readonly local: LocalDriver;
  readonly plugins: PluginRegistry;
  private readonly records: VolumeRecords;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: VolumeServiceOptions) {
    const root = opts.config.dataRoot;
    this.local = new LocalDriver(path.join(root, 'volumes'));
    this.records = new VolumeRecords(path.join(root, 'volume-state'));
    this.plugins = new PluginRegistry(opts.config.pluginDirs);
  }

  /** Serialises changes to volumes and plans (create vs remove vs prune vs mount). */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {});
    return p;
  }

  async open(): Promise<void> {
    await this.local.init();
    await this.records.open(this.local);
  }

  /** Container IDs whose plans use the volume (only containers that still exist, when known). */
  refs(name: string): string[] {
    return this.livePlans()
      .filter((p) => p.mounts.some((m) => m.type === 'volume' && m.source === name))
      .map((p) => p.id);
  }

  /** Plans of containers that still exist (all plans while the container directory is not up yet). */
  private livePlans(): ContainerPlan[] {
    let alive: Set<string> | undefined;
    try {
      alive = new Set(this.opts.containers.list().map((c) => c.Id));
    } catch {
      alive = undefined;
    }
    return [...this.records.plans.values()].filter((p) => !alive || alive.has(p.id));
  }

  private mountedRefs(name: string, except?: string): number {
    return this.livePlans().filter(
      (p) => p.mounted && p.id !== except && p.mounts.some((m) => m.type === 'volume' && m.source === name),
    ).length;
  }

  private getMeta(name: string): VolumeMeta {
    const m = this.records.metas.get(name);
    if (!m) throw notFound(`get ${name}: no such volume`);
    return m;
  }

  private async toApi(m: VolumeMeta, detail: boolean): Promise<Volume> {
    const v: Volume = {
      CreatedAt: m.CreatedAt,
      Driver: m.Driver,
      Labels: m.Labels ?? {},
      Mountpoint: '',
      Name: m.Name,
      Options: Object.keys(m.Options ?? {}).length ? m.Options : null,
      Scope: 'local',
    };
    if (m.Driver === 'local') v.Mountpoint = this.local.dataPath(m.Name);
    else if (detail) {
      try {
        const c = await this.plugins.get(m.Driver);
        const got = await c.get(m.Name);
        v.Mountpoint = got.Mountpoint ?? '';
        if (got.Status) v.Status = got.Status;
        const caps = await c.capabilities();
        if (caps.Scope === 'global') v.Scope = 'global';
      } catch (err) {
        log.warn('volume plugin unavailable', { volume: m.Name, driver: m.Driver, err });
      }
    }
    return v;
  }

  // ---------------------------------------------------------------- volume API

  async create(req: CreateVolumeRequest): Promise<Volume> {
    return this.locked(() => this.createUnlocked(req, false));
  }

  private async createUnlocked(req: CreateVolumeRequest, anonymous: boolean): Promise<Volume> {
    const name = req.Name || newId();
    const driver = req.Driver || 'local';
    const opts = req.DriverOpts ?? {};
    const labels = { ...(req.Labels ?? {}) };
    if (anonymous) labels[ANONYMOUS_LABEL] = '';
    const wrap = (err: unknown): never => {
      if (err instanceof BerthError) throw new BerthError(err.kind, `create ${name}: ${err.message}`, err);
      throw systemError(`create ${name}: ${(err as Error).message}`, err);
    };
    const existing = this.records.metas.get(name);
    if (existing) {
      if (req.Driver && existing.Driver !== driver)
        throw conflict(
          `create ${name}: driver '${existing.Driver}' already has volume '${name}': volume name must be unique`,
        );
      return this.toApi(existing, true);
    }
    const meta: VolumeMeta = {
      Name: name,
      Driver: driver,
      Labels: labels,
      Options: { ...opts },
      CreatedAt: rfc3339(new Date()),
    };
    if (driver === 'local') {
      // The metadata first, the directory after: a crash in between leaves metadata without a
      // directory, which the next start drops (open). The other order would leave a directory
      // that start-up adopts as a volume with no labels: an anonymous volume nobody names.
      let made = false;
      try {
        this.local.validate(name, opts);
        await this.records.saveMeta(meta);
        made = true;
        await this.local.create(name, opts);
      } catch (err) {
        if (made) {
          await fs.rm(this.local.dir(name), { recursive: true, force: true }).catch(() => {});
          await fs.rm(this.records.metaFile(name), { force: true }).catch(() => {});
        }
        wrap(err);
      }
    } else {
      try {
        validateAnyName(name);
        const c = await this.plugins.get(driver);
        await c.create(name, opts);
        await this.records.saveMeta(meta);
      } catch (err) {
        wrap(err);
      }
    }
    this.records.metas.set(name, meta);
    this.opts.events.publish('volume', 'create', name, { driver });
    return this.toApi(meta, true);
  }

  async inspect(name: string): Promise<Volume> {
    if (!this.records.metas.has(name)) await this.locked(() => this.adoptFromPlugins(name));
    return this.toApi(this.getMeta(name), true);
  }

  /**
   * Volumes that discovered plugins hold but this daemon has no record of (made before, or by
   * another engine) are recorded, as Docker's store does when it lists or looks up across drivers.
   * With `only`, just that name is looked up (`VolumeDriver.Get`); otherwise every plugin is listed.
   * A plugin that does not answer within a few seconds is skipped. Call under the lock.
   */
  private async adoptFromPlugins(only?: string): Promise<void> {
    let drivers: string[];
    try {
      drivers = await this.plugins.scan();
    } catch {
      return;
    }
    for (const driver of drivers) {
      let found: PluginVolume[];
      try {
        const c = await withTimeout(this.plugins.get(driver), 3000);
        found = only ? [await withTimeout(c.get(only), 3000)] : await withTimeout(c.list(), 3000);
      } catch {
        continue;
      }
      for (const v of found) {
        if (!v?.Name || this.records.metas.has(v.Name)) continue;
        try {
          validateAnyName(v.Name);
        } catch {
          continue;
        }
        const created = v.CreatedAt ? new Date(v.CreatedAt) : new Date();
        const meta: VolumeMeta = {
          Name: v.Name,
          Driver: driver,
          Labels: {},
          Options: {},
          CreatedAt: rfc3339(Number.isNaN(created.getTime()) ? new Date() : created),
        };
        await this.records.saveMeta(meta);
        this.records.metas.set(v.Name, meta);
      }
      if (only && this.records.metas.has(only)) return;
    }
  }

  async list(filters: Filters = new Map()): Promise<{ Volumes: Volume[]; Warnings: string[] }> {
    const keep = listFilter(filters);
    await this.locked(() => this.adoptFromPlugins());
    const out: Volume[] = [];
    for (const m of [...this.records.metas.values()].sort((a, b) => a.Name.localeCompare(b.Name))) {
      if (keep(m, this.refs(m.Name).length)) out.push(await this.toApi(m, false));
    }
    return { Volumes: out, Warnings: [] };
  }

  async remove(name: string, force = false): Promise<void> {
    return this.locked(async () => {
      if (!this.records.metas.has(name)) await this.adoptFromPlugins(name);
      const m = this.records.metas.get(name);
      if (!m) {
        if (force) return;
        throw notFound(`get ${name}: no such volume`);
      }
      const users = this.refs(name);
      if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.join(', ')}]`);
      await this.destroy(m, force);
    });
  }

  /** Removes a volume that nobody uses: driver first (the data), then the metadata. */
  private async destroy(m: VolumeMeta, force: boolean, keepPlanOf?: string): Promise<void> {
    try {
      if (m.Driver === 'local') await this.local.remove(m.Name);
      else await (await this.plugins.get(m.Driver)).remove(m.Name);
    } catch (err) {
      if (!force) {
        if (err instanceof BerthError)
          throw new BerthError(err.kind, `remove ${m.Name}: ${err.message}`, err);
        throw systemError(`remove ${m.Name}: ${(err as Error).message}`, err);
      }
      log.warn('volume driver failed to remove volume; forgetting it anyway', { volume: m.Name, err });
    }
    await fs.rm(this.records.metaFile(m.Name), { force: true });
    this.records.metas.delete(m.Name);
    for (const p of this.records.plans.values())
      if (p.id !== keepPlanOf && p.mounts.some((x) => x.type === 'volume' && x.source === m.Name))
        await this.records.dropPlan(p.id);
    this.opts.events.publish('volume', 'destroy', m.Name, { driver: m.Driver });
  }

  async prune(
    filters: Filters = new Map(),
  ): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    const wanted = pruneFilter(filters, ANONYMOUS_LABEL);
    return this.locked(async () => {
      const deleted: string[] = [];
      let space = 0;
      for (const m of [...this.records.metas.values()]) {
        if (!wanted(m) || this.refs(m.Name).length) continue;
        const size = m.Driver === 'local' ? await this.local.size(m.Name) : 0;
        try {
          await this.destroy(m, false);
        } catch (err) {
          log.warn('prune: could not remove volume', { volume: m.Name, err });
          continue;
        }
        deleted.push(m.Name);
        if (size > 0) space += size;
      }
      this.opts.events.publish('volume', 'prune', '', { reclaimed: String(space) });
      return { VolumesDeleted: deleted, SpaceReclaimed: space };
    });
  }

  /** Every volume with `UsageData` (`system df`). */
  async usage(): Promise<Volume[]> {
    const out: Volume[] = [];
    for (const m of [...this.records.metas.values()].sort((a, b) => a.Name.localeCompare(b.Name))) {
      const v = await this.toApi(m, false);
      v.UsageData = {
        Size: m.Driver === 'local' ? await this.local.size(m.Name) : -1,
        RefCount: this.refs(m.Name).length,
      };
      out.push(v);
    }
    return out;
  }

  // ---------------------------------------------------------------- container life cycle

  async prepare(record: ContainerRecord, imageVolumes: string[], _rootfs?: string): Promise<MountPoint[]> {
    // Prepared already (a retried create): the plan, and its anonymous volumes, stand.
    const known = this.records.plans.get(record.Id);
    if (known) return this.points(known, new Map());
    const h = record.HostConfig;
    const volumeDriver = h.VolumeDriver ?? '';
    const byDest = new Map<string, PlannedMount>();
    // 1. --volumes-from: the source container's binds and volumes, mode ro/rw applied.
    for (const spec of h.VolumesFrom ?? []) {
      const { ref, mode } = parseVolumesFrom(spec);
      const src = this.opts.containers.get(ref);
      if (src.Id === record.Id) throw invalid('cannot use --volumes-from with the container itself');
      for (const m of this.planOf(src)) {
        if (m.type === 'tmpfs') continue;
        const rw = m.rw && !mode.split(',').includes('ro');
        byDest.set(m.destination, { ...m, rw, copyData: false, anonymous: false, origin: 'volumes-from' });
      }
    }
    // 2. Binds (-v), 3. Mounts (--mount): later ones override volumes-from, not each other.
    const user = new Set<string>();
    const take = (m: PlannedMount) => {
      if (user.has(m.destination)) throw invalid(`Duplicate mount point: ${m.destination}`);
      user.add(m.destination);
      byDest.set(m.destination, m);
    };
    for (const b of h.Binds ?? []) take(parseBind(b, volumeDriver));
    for (const spec of h.Mounts ?? []) {
      const m = parseMountSpec(spec, (p) => existsSync(p));
      if (m.type === 'volume' && !m.driver) m.driver = volumeDriver;
      take(m);
    }
    for (const [dest, o] of Object.entries(h.Tmpfs ?? {})) take(parseTmpfs(dest, o ?? ''));
    // 4. Config.Volumes and the image's VOLUMEs: anonymous volumes where nothing is mounted yet.
    for (const dest of [...Object.keys(record.Config.Volumes ?? {}), ...imageVolumes]) {
      if (!path.posix.isAbsolute(dest))
        throw invalid(
          `invalid mount config for type "volume": invalid mount path: '${dest}' mount path must be absolute`,
        );
      const d = path.posix.normalize(dest);
      if (d === '/')
        throw invalid(
          `invalid mount config for type "volume": invalid specification: destination can't be '/'`,
        );
      if (byDest.has(d)) continue;
      byDest.set(d, {
        type: 'volume',
        source: '',
        destination: d,
        rw: true,
        mode: '',
        propagation: '',
        driver: volumeDriver,
        copyData: true,
        anonymous: true,
        origin: 'image',
      });
    }
    const mounts = [...byDest.values()];
    return this.locked(async () => {
      const created: VolumeMeta[] = [];
      const plan: ContainerPlan = { id: record.Id, mounts, mounted: false };
      // Intent first: anonymous volumes get their names now and the plan naming them is written
      // before they are made, so a crash mid-create leaves a plan that start-up releases
      // (releaseOrphans), never a volume nobody names.
      for (const m of mounts) if (m.type === 'volume' && !m.source && m.anonymous) m.source = newId();
      const makes = mounts.some((m) => m.type === 'volume' && !this.records.metas.has(m.source));
      try {
        if (makes) await this.records.savePlan(plan);
        for (const m of mounts) {
          if (m.type !== 'volume') continue;
          if (m.source && !m.driver && !this.records.metas.has(m.source)) await this.adoptFromPlugins(m.source);
          const exists = m.source ? this.records.metas.get(m.source) : undefined;
          if (exists) {
            if (m.driver && m.driver !== exists.Driver && m.origin !== 'volumes-from')
              throw conflict(
                `create ${m.source}: driver '${exists.Driver}' already has volume '${m.source}': volume name must be unique`,
              );
            m.driver = exists.Driver;
            continue;
          }
          if (m.origin === 'volumes-from') throw notFound(`get ${m.source}: no such volume`);
          const v = await this.createUnlocked(
            { Name: m.source, Driver: m.driver, DriverOpts: m.driverOpts, Labels: m.labels },
            m.anonymous === true,
          );
          m.source = v.Name;
          m.driver = v.Driver;
          created.push(this.records.metas.get(v.Name)!);
        }
      } catch (err) {
        for (const c of created) await this.destroy(c, true).catch(() => {});
        if (makes) await this.records.dropPlan(record.Id);
        throw err;
      }
      // Most containers mount nothing: their (empty) plan is rebuilt from the record when needed,
      // so it costs no durable write at create.
      if (mounts.length) await this.records.savePlan(plan);
      else this.records.plans.set(plan.id, plan);
      return this.points(plan, new Map());
    });
  }

  /** Host path of a volume for a container, mounting it (local options, plugin Mount) as needed. */
  private async mountVolume(m: PlannedMount, containerId: string): Promise<string> {
    const meta = this.getMeta(m.source);
    if (meta.Driver === 'local') {
      // Local volumes with options are mounted once, for their first user.
      if (this.mountedRefs(meta.Name, containerId) === 0 || !this.local.isMounted(meta.Name))
        return this.local.mount(meta.Name);
      return this.local.dataPath(meta.Name);
    }
    return (await this.plugins.get(meta.Driver)).mount(meta.Name, containerId);
  }

  private async unmountVolume(name: string, containerId: string): Promise<void> {
    const meta = this.records.metas.get(name);
    if (!meta) return;
    if (meta.Driver === 'local') {
      if (this.mountedRefs(name, containerId) === 0) await this.local.unmount(name);
      return;
    }
    await (await this.plugins.get(meta.Driver)).unmount(name, containerId);
  }

  async mount(record: ContainerRecord, rootfs: string): Promise<ResolvedMounts> {
    if (!this.records.plans.has(record.Id)) await this.prepare(record, []);
    return this.locked(async () => {
      const plan = this.records.plans.get(record.Id)!;
      const oci: OciMount[] = [];
      const sources = new Map<string, string>();
      const done: PlannedMount[] = [];
      const view = new ContainerView(rootfs, []);
      try {
        for (const m of byDepth(plan.mounts)) {
          if (m.type === 'tmpfs') {
            oci.push({ destination: m.destination, type: 'tmpfs', source: 'tmpfs', options: ociOptions(m) });
            continue;
          }
          let source = m.source;
          if (m.type === 'bind') {
            if (!existsSync(source)) {
              if (!m.createSource)
                throw invalid(
                  `invalid mount config for type "bind": bind source path does not exist: ${source}`,
                );
              await fs.mkdir(source, { recursive: true, mode: 0o755 });
            }
          } else {
            source = await this.mountVolume(m, record.Id);
            done.push(m);
            if (m.subpath) source = await this.subpathOf(source, m.subpath, m.source);
            sources.set(m.destination, source);
            if (m.copyData) {
              await this.copyUp(view, m.destination, source);
              m.copyData = false;
            }
            const meta = this.records.metas.get(m.source);
            this.opts.events.publish('volume', 'mount', m.source, {
              container: record.Id,
              destination: m.destination,
              driver: meta?.Driver ?? 'local',
              propagation: m.propagation,
              'read/write': String(m.rw),
            });
          }
          oci.push({ destination: m.destination, type: 'bind', source, options: ociOptions(m) });
        }
      } catch (err) {
        for (const m of done) await this.unmountVolume(m.source, record.Id).catch(() => {});
        throw err;
      }
      plan.mounted = true;
      await this.records.saveMounted(plan);
      return { oci, points: this.points(plan, sources) };
    });
  }

  /** The host directory of a volume's subpath, resolved inside the volume (no symlink leads out). */
  private async subpathOf(volumePath: string, subpath: string, name: string): Promise<string> {
    const v = new ContainerView(volumePath, []);
    const loc = await v.resolve(`/${subpath}`, true);
    const st = await secureLstat(loc);
    if (!st) throw invalid(`cannot access path ${subpath} in volume ${name}: no such file or directory`);
    return loc.host;
  }

  /** Copies the image's content at `dest` into an empty volume (Docker's copy-up; never for binds). */
  private async copyUp(view: ContainerView, dest: string, volumePath: string): Promise<void> {
    const entries = await fs.readdir(volumePath).catch(() => ['?']);
    if (entries.length > 0) return;
    const loc = await view.resolve(dest, true);
    if (!loc.host.startsWith(view.rootfs)) return;
    const st = await view.stat(loc);
    if (!st?.isDirectory()) return;
    const { run } = await import('../util/exec.js');
    await run('cp', ['-a', '--', `${loc.host}/.`, `${volumePath}/`]);
  }

  async unmount(record: ContainerRecord): Promise<void> {
    return this.locked(async () => {
      const plan = this.records.plans.get(record.Id);
      if (!plan?.mounted) return;
      plan.mounted = false;
      for (const m of plan.mounts) {
        if (m.type !== 'volume') continue;
        try {
          await this.unmountVolume(m.source, record.Id);
        } catch (err) {
          log.warn('volume unmount failed', { volume: m.source, container: record.Id, err });
        }
        this.opts.events.publish('volume', 'unmount', m.source, {
          container: record.Id,
          driver: this.records.metas.get(m.source)?.Driver ?? 'local',
        });
      }
      await this.records.saveMounted(plan);
    });
  }

  async release(record: ContainerRecord, removeAnonymous: boolean): Promise<void> {
    await this.unmount(record);
    return this.locked(async () => {
      const plan = this.records.plans.get(record.Id);
      if (!plan) return;
      // The plan is the only record of which anonymous volumes are this container's: it goes
      // last, so a removal interrupted half-way is finished at the next start (see restore).
      if (removeAnonymous) await this.removeAnonymous(record, plan);
      await this.records.dropPlan(record.Id);
    });
  }

  async releaseOrphans(alive: Set<string>): Promise<string[]> {
    return this.locked(async () => {
      const orphans = [...this.records.plans.values()].filter((p) => !alive.has(p.id));
      for (const p of orphans) {
        await this.removeAnonymous({ Id: p.id } as ContainerRecord, p);
        await this.records.dropPlan(p.id);
      }
      return orphans.map((p) => p.id);
    });
  }

  private async removeAnonymous(record: ContainerRecord, plan: ContainerPlan): Promise<void> {
    for (const m of plan.mounts) {
      if (m.type !== 'volume') continue;
      // Anonymous volumes (also when reached through --volumes-from) go; named ones stay.
      const meta = this.records.metas.get(m.source);
      if (
        !meta ||
        !(ANONYMOUS_LABEL in (meta.Labels ?? {})) ||
        this.refs(m.source).filter((id) => id !== record.Id).length
      )
        continue;
      await this.destroy(meta, false, record.Id).catch((err) =>
        log.warn('could not remove anonymous volume', { volume: m.source, err }),
      );
    }
  }

  /** The container's filesystem view for `docker cp`: rootfs, volumes, binds and its /etc files. */
  async view(record: ContainerRecord, rootfs: string): Promise<ContainerView> {
    const mounts: ViewMount[] = [];
    const plan = this.records.plans.get(record.Id);
    for (const m of plan?.mounts ?? this.planOf(record)) {
      if (m.type === 'tmpfs') continue;
      let source = m.source;
      if (m.type === 'volume') {
        const meta = this.records.metas.get(m.source);
        if (!meta) continue;
        if (meta.Driver === 'local') source = this.local.dataPath(meta.Name);
        else {
          try {
            source = await (await this.plugins.get(meta.Driver)).path(meta.Name);
          } catch {
            continue;
          }
          if (!source) continue;
        }
      }
      mounts.push({ destination: m.destination, source, rw: m.rw });
    }
    const files: [string, string][] = [
      ['/etc/hostname', record.HostnamePath],
      ['/etc/hosts', record.HostsPath],
      ['/etc/resolv.conf', record.ResolvConfPath],
    ];
    for (const [dest, src] of files)
      if (src && existsSync(src) && !mounts.some((x) => x.destination === dest))
        mounts.push({ destination: dest, source: src, rw: true });
    return new ContainerView(rootfs, mounts, !!record.HostConfig.ReadonlyRootfs);
  }

  /** Numeric uid/gid of the container's user, read from the container's own passwd/group. */
  containerUser(record: ContainerRecord, view: ContainerView): Promise<{ uid: number; gid: number }> {
    return containerUser(record.Config.User || '', view);
  }

  /** A container's plan; for a container prepared before this service knew it, from its `Mounts`. */
  private planOf(rec: ContainerRecord): PlannedMount[] {
    return this.records.plans.get(rec.Id)?.mounts ?? plannedFromMounts(rec.Mounts ?? []);
  }

  private points(plan: ContainerPlan, sources: Map<string, string>): MountPoint[] {
    return mountPoints(plan.mounts, (m) => sources.get(m.destination) ?? (m.driver === 'local' ? this.local.dataPath(m.source) : ''));
  }

  /** Driver names for `/info` (`Plugins.Volume`): local plus every discovered plugin. */
  async driverNames(): Promise<string[]> {
    return ['local', ...(await this.plugins.scan().catch(() => []))];
  }
}

export async function openVolumeService(opts: VolumeServiceOptions): Promise<LocalVolumeService> {
  const s = new LocalVolumeService(opts);
  try {
    await s.open();
  } catch (err) {
    if (errnoCode(err)) throw systemError(`volumes: ${(err as Error).message}`, err);
    throw err;
  }
  return s;
}
