/**
 * The container service: records, the state machine (created → running ⇄ paused → exited →
 * removing), and the life cycle through the lower layers: rootfs (layers), mounts (volumes),
 * networking, and the OCI runtime behind its monitor. Also restart policies and re-adopting
 * running containers after a daemon restart (live restore).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ImageService } from '../images/index.js';
import type { LayerStore, RootfsStore } from '../layers/index.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import type { EventBus } from '../model/events.js';
import type { NetworkService } from '../network/index.js';
import type { VolumeService } from '../volumes/index.js';
import type { NetworkAttachment, NetworkChange } from '../network/index.js';
import { type OciRuntime, RuntimeStartError } from '../runtime/index.js';
import { BerthError, conflict, invalid, isKind, notFound, notModified } from '../util/errors.js';
import { ContainerArchive } from './archive.js';
import { ExecService } from './exec.js';
import { cgroupPids, oomKilled, processTable, sampleStats, type StatsBase } from './process-stats.js';
import { LogService } from './logging/index.js';
import { HealthMonitors } from './health.js';
import { planUpdate } from './update.js';
import { exitCodeFor, startError } from './start-errors.js';
import { newId } from '../util/ids.js';
import { log } from '../util/log.js';
import { type AttachSession, connectShared } from './attach.js';
import { buildRecord, type CreateRequest } from './create.js';
import type { ContainerDirectory } from '../model/container-directory.js';
import { generateName, validateName } from './names.js';
import { containerSpec } from './oci-spec.js';
import { signalNumber } from './signals.js';
import { LiveTable, type WaitCondition } from './live.js';
import { ContainerStore } from './store.js';
import type { ContainerRecord, EndpointSettings } from '../model/container.js';

export type { WaitCondition };

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** What the container service drives: the layers below it, by their interfaces. */
export interface ContainerDeps {
  config: DaemonConfig;
  events: EventBus;
  images: ImageService;
  rootfs: RootfsStore & LayerStore;
  networks: NetworkService;
  volumes: VolumeService;
  runtime: OciRuntime;
}

export class ContainerService implements ContainerDirectory {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly live = new LiveTable();
  readonly runtime: OciRuntime;
  readonly exec: ExecService;
  readonly archive: ContainerArchive;
  readonly logs: LogService;
  private readonly health: HealthMonitors;
  private readonly store: ContainerStore;
  private shuttingDown = false;

  private constructor(private readonly s: ContainerDeps) {
    this.runtime = s.runtime;
    this.store = new ContainerStore(path.join(s.config.dataRoot, 'containers'));
    this.exec = new ExecService(this, s.runtime, (id) => s.rootfs.mount(id));
    this.archive = new ContainerArchive(this, s.rootfs, s.volumes);
    this.logs = new LogService({ Type: s.config.logDriver, Config: s.config.logOpts });
    this.health = new HealthMonitors({
      probe: (c, cmd, timeoutMs) => this.exec.probe(c, cmd, timeoutMs),
      saveState: (c) => this.store.saveState(c),
      publish: (c, action) => this.publish(c, action),
    });
  }

  static async open(deps: ContainerDeps): Promise<ContainerService> {
    const svc = new ContainerService(deps);
    await svc.runtime.init();
    for (const c of await svc.store.loadAll()) svc.byId.set(c.Id, c);
    await svc.removeOrphans();
    return svc;
  }

  /**
   * A create interrupted by a crash made its layer and its anonymous volumes before its record:
   * what no record names (readable or not) is removed before anything new is made.
   */
  private async removeOrphans(): Promise<void> {
    const keep = new Set([...this.byId.keys(), ...this.store.unreadable]);
    const layers = await this.s.rootfs.removeOrphans(keep).catch((err) => {
      log.warn('cannot remove orphaned container layers', { err: String(err) });
      return [];
    });
    const plans = await this.s.volumes.releaseOrphans(keep).catch((err) => {
      log.warn('cannot release orphaned volume plans', { err: String(err) });
      return [];
    });
    if (layers.length || plans.length) log.info('removed what no container record names', { layers, plans });
  }

  /** After the API is up: re-adopt containers that kept running, and apply restart policies. */
  async restore(): Promise<void> {
    const running: ContainerRecord[] = [];
    for (const c of this.list()) {
      if (c.State.Status === 'removing') {
        // Finished as it was asked: with its anonymous volumes after `rm -v` (recorded at its start).
        await this.remove(c.Id, { force: true, volumes: Boolean(c.RemoveVolumes) }).catch((err) => log.warn('cannot finish removal', { id: c.Id, err }));
        continue;
      }
      // An --rm container that ran and is stopped was on its way out when berthd stopped (as Docker).
      if (c.HostConfig.AutoRemove && !c.State.Running && c.State.StartedAt !== ZERO_TIME) {
        await this.remove(c.Id, { force: true, volumes: true }).catch((err) => log.warn('cannot finish removal', { id: c.Id, err }));
        continue;
      }
      if (!c.State.Running && c.State.Status !== 'restarting') {
        if (this.runtime.holds(c.Id, this.runtimeOf(c))) await this.releaseInterruptedStart(c);
        continue;
      }
      const rt = await this.runtime.state(c.Id, this.runtimeOf(c));
      if (rt && (rt.status === 'running' || rt.status === 'paused')) {
        running.push(c);
        this.logs.following(c);
        this.watchExit(c);
        this.health.start(c, false);
        log.info('re-adopted running container', { id: c.Id, pid: rt.pid });
      } else {
        const code = (await this.runtime.exitCode(c.Id)) ?? 255;
        // On a full disk the exit state cannot be saved: logged, and the exit file stays for the next start.
        await this.handleExit(c, code, false).catch((err) => log.warn('cannot record an exit', { id: c.Id, err: String(err) }));
      }
    }
    await this.s.networks.restore(running).catch((err) => log.warn('network restore failed', { err }));
    for (const c of this.list()) {
      const policy = c.HostConfig.RestartPolicy?.Name;
      if (c.State.Status !== 'running' && c.State.Status !== 'paused' && (policy === 'always' || (policy === 'unless-stopped' && !c.ManuallyStopped))) {
        if (c.State.Status === 'created' && c.State.StartedAt === ZERO_TIME) continue;
        void this.start(c.Id).catch((err) => log.warn('restart policy: start failed', { id: c.Id, err }));
      }
    }
  }

  /**
   * berthd died between the runtime's create and the record saying `running`: the process runs
   * (or waits) unknown to the record. Docker deletes such a task at restore; so does this, with
   * what the start had set up (network, volume and rootfs mounts). The record stays as it was.
   */
  private async releaseInterruptedStart(c: ContainerRecord): Promise<void> {
    log.info('releasing a start interrupted by a stop of the daemon', { id: c.Id });
    await this.runtime.delete(c.Id, this.runtimeOf(c)).catch((err) => log.warn('runtime delete failed', { id: c.Id, err }));
    await this.runtime.cleanup(c.Id).catch(() => {});
    await this.s.networks.detach(c).catch((err) => log.warn('network detach failed', { id: c.Id, err }));
    await this.s.volumes.unmount(c).catch((err) => log.warn('volume unmount failed', { id: c.Id, err }));
    await this.s.rootfs.unmount(c.Id).catch(() => {});
  }

  /** Daemon shutdown: containers keep running (live restore); only watchers are dropped. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.health.stopAll();
    for (const l of this.live.all()) {
      l.stopExitWatch?.();
      if (l.restartTimer) clearTimeout(l.restartTimer);
    }
    this.logs.shutdown();
    this.runtime.close();
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  get(ref: string): ContainerRecord {
    const direct = this.byId.get(ref);
    if (direct) return direct;
    const name = ref.startsWith('/') ? ref : `/${ref}`;
    for (const c of this.byId.values()) if (c.Name === name) return c;
    const matches = ref.length > 0 && /^[0-9a-f]+$/.test(ref) ? this.list().filter((c) => c.Id.startsWith(ref)) : [];
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) throw invalid(`multiple IDs found with provided prefix: ${ref}`);
    throw notFound(`No such container: ${ref}`);
  }

  private runtimeOf(c: ContainerRecord): string {
    return c.HostConfig.Runtime || this.s.config.defaultRuntime;
  }

  private publish(c: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.s.events.publish('container', action, c.Id, { image: c.Config.Image, name: c.Name.slice(1), ...c.Config.Labels, ...extra });
  }

  // ---- create ------------------------------------------------------------------------------

  async create(req: CreateRequest, requestedName?: string): Promise<{ Id: string; Warnings: string[] }> {
    if (typeof req !== 'object' || req === null) throw invalid('invalid JSON: expected an object');
    if (typeof req.Image !== 'string' || req.Image === '') throw invalid('No image specified');
    const name = requestedName ? validateName(requestedName) : `/${generateName((n) => this.list().some((c) => c.Name === n))}`;
    const clash = this.list().find((c) => c.Name === name);
    if (clash)
      throw conflict(
        `Conflict. The container name "${name}" is already in use by container "${clash.Id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    const runtime = req.HostConfig?.Runtime || this.s.config.defaultRuntime;
    if (!this.s.config.runtimes[runtime]) throw invalid(`unknown or invalid runtime name: ${runtime}`);
    const image = await this.s.images.resolve(req.Image);
    let id = newId();
    while (this.list().some((c) => c.Id.slice(0, 16) === id.slice(0, 16))) id = newId();
    const dir = this.store.dir(id);
    const record = buildRecord(id, name, req, image, req.Image, { dir });
    record.HostConfig.LogConfig = this.logs.configFor(req.HostConfig?.LogConfig);
    record.LogPath = this.logs.logPath(record.HostConfig.LogConfig.Type, dir, id);
    await this.s.networks.validate(record);
    record.NetworkSettings.Networks = this.s.networks.plannedNetworks(record);
    // Reserve the name at once: a concurrent create with the same name must see it.
    this.byId.set(id, record);
    try {
      await fs.mkdir(dir, { recursive: true });
      const imageVolumes = Object.keys(image.config.config?.Volumes ?? {});
      if (imageVolumes.length) {
        await this.s.rootfs.create(id, image.diffIds);
        record.Mounts = await this.s.volumes.prepare(record, imageVolumes, await this.s.rootfs.mount(id));
      } else {
        // Independent without image volumes: their durable writes overlap.
        [, record.Mounts] = await Promise.all([this.s.rootfs.create(id, image.diffIds), this.s.volumes.prepare(record, [], undefined)]);
      }
      await this.store.save(record);
    } catch (err) {
      this.byId.delete(id);
      await this.s.volumes.release(record, true).catch(() => {});
      await this.s.rootfs.remove(id).catch(() => {});
      await this.store.remove(id).catch(() => {});
      throw err;
    }
    this.publish(record, 'create');
    // A start usually follows at once (`docker run`): mount the rootfs now, off the start path.
    // A failure here only costs the head start; the start mounts again and reports it.
    void this.s.rootfs.mount(id).catch(() => {});
    return { Id: id, Warnings: [] };
  }

  // ---- start -------------------------------------------------------------------------------

  async start(ref: string): Promise<void> {
    const c = this.get(ref);
    await this.live.serial(c.Id, () => this.startLocked(c));
  }

  private async startLocked(c: ContainerRecord): Promise<void> {
    if (c.State.Status === 'paused') throw conflict('cannot start a paused container, try unpause instead');
    if (c.State.Running) throw notModified();
    if (c.State.Status === 'removing' || c.State.Dead) throw conflict(`container ${c.Id} is marked for removal and cannot be started`);
    const live = this.live.of(c.Id);
    if (live.restartTimer) {
      clearTimeout(live.restartTimer);
      live.restartTimer = undefined;
    }
    c.ManuallyStopped = false;
    live.released = false;
    let net: NetworkAttachment | undefined;
    let mountedVolumes = false;
    const runtime = this.runtimeOf(c);
    const t0 = performance.now();
    const lap = (what: string) => log.debug('start phase', { id: c.Id.slice(0, 12), what, ms: Math.round(performance.now() - t0) });
    try {
      // The network does not depend on the filesystem: set both up at once.
      const attaching = this.s.networks.attach(c).then((n) => (net = n));
      attaching.catch(() => {}); // awaited below; this only keeps an early failure from looking unhandled
      const rootfs = await this.s.rootfs.mount(c.Id).catch(async (err) => {
        await attaching.catch(() => {});
        throw err;
      });
      lap('rootfs');
      const mounts = await this.s.volumes.mount(c, rootfs).catch(async (err) => {
        await attaching.catch(() => {});
        throw err;
      });
      lap('volumes');
      mountedVolumes = true;
      c.Mounts = mounts.points;
      await attaching;
      if (!net) throw new Error('network attach did not complete');
      c.NetworkSettings = net.settings;
      lap('network');
      const spec = containerSpec(c, { rootfs, net, mounts: mounts.oci, config: this.s.config });
      lap('spec');
      await this.logs.beforeStart(c);
      const monitorLog = this.logs.monitorLog(c);
      const pid = await this.runtime.create({
        id: c.Id,
        name: c.Name.slice(1),
        spec,
        runtime,
        tty: c.Config.Tty,
        openStdin: c.Config.OpenStdin,
        leaveStdinOpen: c.Config.OpenStdin && !c.Config.StdinOnce,
        logDriver: monitorLog.driver,
        logPath: monitorLog.driver === 'none' ? '' : monitorLog.path,
        logSizeMax: monitorLog.driver === 'none' ? undefined : monitorLog.sizeMax,
      });
      this.logs.following(c);
      // Attach sessions waiting for this start connect before the process runs: no output is lost.
      lap('create');
      await connectShared([...live.pendingAttach], this.runtime.attachSocket(c.Id));
      live.pendingAttach.clear();
      await this.runtime.start(c.Id, runtime);
      lap('start');
      c.State = { ...c.State, Status: 'running', Running: true, Paused: false, Restarting: false, Dead: false, OOMKilled: false, Pid: pid, ExitCode: 0, Error: '', StartedAt: new Date().toISOString() };
      live.stopped = new Promise((resolve) => (live.markStopped = resolve));
      await this.store.saveState(c);
      this.watchExit(c);
      this.health.start(c, true);
      this.publish(c, 'start');
    } catch (err) {
      await this.runtime.delete(c.Id, runtime).catch(() => {});
      await this.runtime.cleanup(c.Id).catch(() => {});
      await this.logs.exited(c);
      if (net) await this.s.networks.detach(c).catch(() => {});
      if (mountedVolumes) await this.s.volumes.unmount(c).catch(() => {});
      await this.s.rootfs.unmount(c.Id).catch(() => {});
      for (const a of live.pendingAttach) a.finish();
      live.pendingAttach.clear();
      const e = err instanceof RuntimeStartError ? startError(err.message) : err;
      c.State = { ...c.State, Status: c.State.StartedAt === ZERO_TIME ? 'created' : 'exited', Running: false, Restarting: false, Pid: 0, Error: (e as Error).message, ExitCode: exitCodeFor(e as Error) };
      if (c.State.Status === 'exited') c.State.FinishedAt = new Date().toISOString();
      await this.store.saveState(c).catch(() => {});
      this.live.notify(c, 'next-exit');
      // Docker removes an --rm container whose start failed; `docker run --rm` waits for that.
      if (c.HostConfig.AutoRemove) setImmediate(() => void this.remove(c.Id, { force: true, volumes: true }).catch(() => {}));
      throw e;
    }
  }

  // ---- exit and restart policy --------------------------------------------------------------

  private watchExit(c: ContainerRecord): void {
    const live = this.live.of(c.Id);
    live.stopExitWatch?.();
    if (!live.stopped) live.stopped = new Promise((resolve) => (live.markStopped = resolve));
    live.stopExitWatch = this.runtime.onExit(c.Id, (code) => {
      live.stopExitWatch = undefined;
      void this.live.serial(c.Id, () => this.handleExit(c, code, true)).catch((err) => log.error('exit handling failed', { id: c.Id, err }));
    });
  }

  private async handleExit(c: ContainerRecord, code: number, applyPolicy: boolean): Promise<void> {
    if (!this.byId.has(c.Id)) return;
    const t0 = performance.now();
    const lap = (what: string) => log.debug('exit phase', { id: c.Id.slice(0, 12), what, ms: Math.round(performance.now() - t0) });
    log.debug('container exited', { id: c.Id.slice(0, 12), code });
    this.health.stop(c.Id);
    const runtime = this.runtimeOf(c);
    // Read before the runtime's delete removes the cgroup that counted the kills.
    const oom = c.HostConfig.Memory ? await oomKilled(this.s.config.cgroupParent, c.Id) : false;
    // Independent releases run together; the rootfs goes last, after anything mounted into it.
    await Promise.all([
      this.runtime
        .deleteStopped(c.Id, runtime)
        .catch(() => {})
        .then(() => lap('runtime')),
      this.s.networks
        .detach(c)
        .catch((err) => log.warn('network detach failed', { id: c.Id, err }))
        .then(() => lap('network')),
      this.s.volumes
        .unmount(c)
        .catch((err) => log.warn('volume unmount failed', { id: c.Id, err }))
        .then(() => lap('volumes')),
    ]);
    // Its last output goes into the log in the background; `logs` waits for it.
    void this.logs.exited(c, c.HostConfig.AutoRemove && !this.shuttingDown);
    // An --rm container's removal follows at once and unmounts its rootfs off the wait path.
    const removing = c.HostConfig.AutoRemove && !this.shuttingDown;
    if (!removing) await this.s.rootfs.unmount(c.Id).catch((err) => log.warn('rootfs unmount failed', { id: c.Id, err }));
    lap('rootfs');
    c.State = { ...c.State, Status: 'exited', Running: false, Paused: false, Restarting: false, Pid: 0, ExitCode: code, OOMKilled: oom, FinishedAt: new Date().toISOString() };
    // A container its policy restarts goes straight to "restarting", keeping its exit code (as Docker).
    const restart = applyPolicy && !this.shuttingDown && !c.HostConfig.AutoRemove && this.shouldRestart(c);
    if (restart) c.State = { ...c.State, Status: 'restarting', Restarting: true };
    const live = this.live.of(c.Id);
    live.released = true;
    live.markStopped?.();
    live.stopped = undefined;
    // An --rm container's record is about to go: no need to make this state durable first.
    if (!c.HostConfig.AutoRemove) await this.store.saveState(c);
    // conmon's exit file goes only now: should berthd die before the state above is written, the
    // restart reads the code from it (137, not an unknown 255).
    await this.runtime.cleanup(c.Id).catch(() => {});
    this.publish(c, 'die', { exitCode: String(code) });
    this.live.notify(c, 'next-exit');
    if (c.HostConfig.AutoRemove && !this.shuttingDown) {
      void this.remove(c.Id, { force: true, volumes: true }).catch((err) => log.warn('auto-remove failed', { id: c.Id, err }));
      return;
    }
    if (restart) {
      const delay = Math.min(100 * 2 ** Math.min(c.RestartCount, 10), 60_000);
      live.restartTimer = setTimeout(() => {
        live.restartTimer = undefined;
        c.RestartCount++;
        void this.live.serial(c.Id, async () => {
          if (c.State.Status !== 'restarting') return;
          // Still "restarting" (with the last exit code) until the start has succeeded or failed.
          await this.startLocked(c);
        }).catch((err) => log.warn('restart failed', { id: c.Id, err }));
      }, delay);
      live.restartTimer.unref();
    }
  }

  private shouldRestart(c: ContainerRecord): boolean {
    if (c.ManuallyStopped) return false;
    const p = c.HostConfig.RestartPolicy;
    switch (p?.Name) {
      case 'always':
      case 'unless-stopped':
        return true;
      case 'on-failure':
        return c.State.ExitCode !== 0 && (!p.MaximumRetryCount || c.RestartCount < p.MaximumRetryCount);
      default:
        return false;
    }
  }

  // ---- wait --------------------------------------------------------------------------------

  wait(ref: string, condition: WaitCondition): ReturnType<LiveTable['wait']> {
    return this.live.wait(this.get(ref), condition);
  }

  /** Resolves when the current run of the container ends (immediately if it is not running). */
  whenStopped(c: ContainerRecord): Promise<void> {
    return this.live.whenStopped(c);
  }

  // ---- stop, kill, restart, pause ------------------------------------------------------------

  async stop(ref: string, opts: { signal?: string; timeout?: number } = {}): Promise<void> {
    const c = this.get(ref);
    const live = this.live.of(c.Id);
    if (c.State.Status === 'restarting' && live.restartTimer) {
      clearTimeout(live.restartTimer);
      live.restartTimer = undefined;
      c.ManuallyStopped = true;
      c.State = { ...c.State, Status: 'exited', Restarting: false };
      await this.store.save(c);
      return;
    }
    if (c.State.Status === 'restarting') {
      // Its policy's start is under way: let it finish, then stop what it started.
      c.ManuallyStopped = true;
      await live.lock;
    }
    if (!c.State.Running) throw notModified();
    c.ManuallyStopped = true;
    await this.store.save(c);
    const runtime = this.runtimeOf(c);
    const stopped = this.whenStopped(c);
    const signal = signalNumber(opts.signal || c.Config.StopSignal || 'SIGTERM');
    const timeout = opts.timeout ?? c.Config.StopTimeout ?? 10;
    if (c.State.Paused) await this.runtime.resume(c.Id, runtime).catch(() => {});
    await this.runtime.kill(c.Id, runtime, signal).catch(() => {});
    // Longer than a timer can hold (setTimeout would fire at once) is as good as for ever.
    const forever = timeout < 0 || timeout * 1000 > 0x7fffffff;
    const graceful = forever ? await stopped.then(() => true) : await raceTimeout(stopped, timeout * 1000);
    if (!graceful) {
      await this.runtime.kill(c.Id, runtime, 9, true).catch(() => {});
      await raceTimeout(stopped, 30_000);
    }
    this.publish(c, 'stop');
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const c = this.get(ref);
    const num = signalNumber(signal);
    if (!c.State.Running) throw conflict(`Cannot kill container: ${ref}: Container ${c.Id} is not running`);
    if (num === 9 || num === 15) {
      c.ManuallyStopped = true;
      await this.store.save(c);
    }
    await this.runtime.kill(c.Id, this.runtimeOf(c), num);
    this.publish(c, 'kill', { signal: String(num) });
  }

  async restart(ref: string, opts: { signal?: string; timeout?: number } = {}): Promise<void> {
    const c = this.get(ref);
    if (c.State.Running) await this.stop(c.Id, opts).catch((err) => {
      if (!(err instanceof BerthError && err.kind === 'not-modified')) throw err;
    });
    await this.start(c.Id).catch((err) => {
      if (!(err instanceof BerthError && err.kind === 'not-modified')) throw err;
    });
    this.publish(c, 'restart');
  }

  async pause(ref: string): Promise<void> {
    const c = this.get(ref);
    if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
    if (c.State.Paused) throw conflict(`Container ${c.Id} is already paused`);
    await this.runtime.pause(c.Id, this.runtimeOf(c));
    c.State = { ...c.State, Status: 'paused', Paused: true };
    await this.store.saveState(c);
    this.publish(c, 'pause');
  }

  async unpause(ref: string): Promise<void> {
    const c = this.get(ref);
    if (!c.State.Paused) throw conflict(`Container ${c.Id} is not paused`);
    await this.runtime.resume(c.Id, this.runtimeOf(c));
    c.State = { ...c.State, Status: 'running', Paused: false };
    await this.store.saveState(c);
    this.publish(c, 'unpause');
  }

  // ---- remove, rename, resize ----------------------------------------------------------------

  async remove(ref: string, opts: { force: boolean; volumes: boolean }): Promise<void> {
    const c = this.get(ref);
    if (c.State.Status === 'removing' && this.live.peek(c.Id)?.lock) {
      // Already being removed (e.g. AutoRemove racing `rm -f`): wait for it.
      await this.live.of(c.Id).lock;
      if (!this.byId.has(c.Id)) return;
    }
    if ((c.State.Running || c.State.Status === 'restarting') && !opts.force) {
      if (c.State.Paused) throw conflict(`cannot remove container "${c.Name}": container is paused and must be unpaused first`);
      throw conflict(`cannot remove container "${c.Name}": container is running: stop the container before removing or force remove`);
    }
    const live = this.live.of(c.Id);
    if (live.restartTimer) {
      clearTimeout(live.restartTimer);
      live.restartTimer = undefined;
    }
    if (c.State.Running) {
      c.ManuallyStopped = true;
      const stopped = this.whenStopped(c);
      const runtime = this.runtimeOf(c);
      if (c.State.Paused) await this.runtime.resume(c.Id, runtime).catch(() => {});
      await this.runtime.kill(c.Id, runtime, 9, true).catch(() => {});
      if (!(await raceTimeout(stopped, 15_000))) {
        // The monitor is gone or stuck: clean up by hand.
        await this.live.serial(c.Id, () => this.handleExit(c, 137, false));
      }
    }
    await this.live.serial(c.Id, async () => {
      if (!this.byId.has(c.Id)) return;
      const t0 = performance.now();
      const lap = (what: string) => log.debug('remove phase', { id: c.Id.slice(0, 12), what, ms: Math.round(performance.now() - t0) });
      c.State.Status = 'removing';
      c.RemoveVolumes = opts.volumes;
      // Made durable so that a restart finishes the removal; an --rm container is removed at
      // restart anyway (see restore), so its removal does not wait for the disk.
      if (!c.HostConfig.AutoRemove) await this.store.save(c).catch(() => {});
      live.stopExitWatch?.();
      this.health.stop(c.Id);
      if (!live.released) {
        await this.runtime.delete(c.Id, this.runtimeOf(c)).catch(() => {});
        await this.runtime.cleanup(c.Id).catch(() => {});
        await this.s.networks.detach(c).catch(() => {});
        await this.s.volumes.unmount(c).catch(() => {});
      }
      lap('marked');
      await this.s.volumes.release(c, opts.volumes);
      lap('volumes');
      await this.s.rootfs.remove(c.Id);
      lap('rootfs');
      this.logs.forget(c.Id);
      await this.store.remove(c.Id);
      lap('record');
      this.byId.delete(c.Id);
      for (const a of live.pendingAttach) a.finish();
      this.live.notify(c, 'removed');
      this.live.delete(c.Id);
      this.publish(c, 'destroy');
    });
  }

  /**
   * `docker update`: records the new limits and restart policy; on a running container the
   * limits go to its cgroup at once through the runtime.
   */
  async update(ref: string, body: Record<string, unknown>): Promise<{ Warnings: string[] }> {
    const c = this.get(ref);
    const { hostConfig, resources } = planUpdate(c.HostConfig, body);
    if (resources && (c.State.Running || c.State.Status === 'restarting')) {
      await this.runtime.update(c.Id, this.runtimeOf(c), resources).catch((err) => {
        throw invalid(`Cannot update container ${c.Id}: ${(err as Error).message}`);
      });
    }
    c.HostConfig = hostConfig;
    await this.store.save(c);
    this.publish(c, 'update');
    return { Warnings: [] };
  }

  async rename(ref: string, newName: string): Promise<void> {
    const c = this.get(ref);
    if (!newName) throw invalid('Neither old nor new names may be empty');
    const name = validateName(newName);
    if (name === c.Name) throw invalid(`Renaming a container with the same name as its current name`);
    const clash = this.list().find((x) => x.Name === name);
    if (clash)
      throw conflict(
        `Conflict. The container name "${name}" is already in use by container "${clash.Id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    const old = c.Name;
    c.Name = name;
    await this.store.save(c);
    this.publish(c, 'rename', { oldName: old });
  }

  // ---- networks ------------------------------------------------------------------------------

  /** `network connect`: the network layer plugs it in (when running); the record is saved here. */
  async connectNetwork(network: string, ref: string, config: EndpointSettings | null | undefined): Promise<void> {
    const c = this.get(ref);
    await this.live.serial(c.Id, async () => this.applyNetworkChange(c, await this.s.networks.connect(network, c, config)));
  }

  async disconnectNetwork(network: string, ref: string, force: boolean): Promise<void> {
    let c: ContainerRecord;
    try {
      c = this.get(ref);
    } catch (err) {
      // -f: a container that is gone may still hold an endpoint there.
      if (force && isKind(err, 'not-found') && (await this.s.networks.disconnectGone(network, ref))) return;
      throw err;
    }
    await this.live.serial(c.Id, async () => this.applyNetworkChange(c, await this.s.networks.disconnect(network, c)));
  }

  private async applyNetworkChange(c: ContainerRecord, change: NetworkChange): Promise<void> {
    c.NetworkingConfig = { ...c.NetworkingConfig, EndpointsConfig: change.EndpointsConfig };
    c.HostConfig.NetworkMode = change.NetworkMode;
    c.NetworkSettings = change.NetworkSettings;
    if (change.PrimaryNetworkLeft) c.PrimaryNetworkLeft = true;
    else delete c.PrimaryNetworkLeft;
    await this.store.save(c);
  }

  async resize(ref: string, height: number, width: number): Promise<void> {
    const c = this.get(ref);
    if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
    if (!c.Config.Tty) return;
    await this.runtime.resize(c.Id, height, width).catch(() => {});
  }

  // ---- attach --------------------------------------------------------------------------------

  /** Hooks an attach session to the container: now if it runs, else at its next start. */
  async attach(c: ContainerRecord, session: AttachSession): Promise<void> {
    const live = this.live.of(c.Id);
    if (session.opts.stdout || session.opts.stderr) this.logs.attached(c, session);
    if (c.State.Running) {
      await session.connect(this.runtime.attachSocket(c.Id));
      return;
    }
    live.pendingAttach.add(session);
    session.onClose(() => live.pendingAttach.delete(session));
  }

  /** `docker top`: the host's `ps`, rows of this container's processes only. */
  async top(ref: string, psArgs: string[]): Promise<{ Titles: string[]; Processes: string[][] }> {
    const c = this.get(ref);
    if (!c.State.Running) throw conflict(`container ${c.Id} is not running`);
    return processTable(new Set(await this.pids(c)), psArgs);
  }

  /** One `docker stats` sample. */
  stats(ref: string, pre: StatsBase): ReturnType<typeof sampleStats> {
    return sampleStats(this.get(ref), this.s.config.cgroupParent, pre);
  }

  /** Host PIDs of the container's processes, from its cgroup. */
  pids(c: ContainerRecord): Promise<number[]> {
    return cgroupPids(this.s.config.cgroupParent, c.Id, c.State.Pid);
  }
}

function raceTimeout(p: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.then(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export { ZERO_TIME };
