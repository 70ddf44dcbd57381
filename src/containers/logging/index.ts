/**
 * Container logs: which file a driver writes, what conmon is told, the json-file recorders of
 * running containers, and reading for `docker logs` / attach `logs=1`.
 */
import * as path from 'node:path';
import { invalid, notImplemented } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { readK8sLog } from '../logs.js';
import { type FollowSource, type LogTime, type ReadOptions, readJsonLog } from './json-reader.js';
import { type LogConfig, resolveLogConfig, rotationOf, validateLogConfig } from './options.js';
import type { LogOutput } from './output.js';
import { JsonFileRecorder } from './recorder.js';
import { type AttrSource, attrsJson } from './attrs.js';

export { LOG_DRIVERS, type LogConfig } from './options.js';
export { LogOutput, type LogSink } from './output.js';
export type { ReadOptions } from './json-reader.js';

/** The parts of a container record logging reads. */
export interface LoggedContainer extends AttrSource {
  Id: string;
  LogPath: string;
  HostConfig: { LogConfig?: LogConfig };
}

/** How conmon records the container's output. */
export type MonitorLog = { driver: 'k8s-file'; path: string; sizeMax?: number } | { driver: 'none' };

const MONITOR_FILE = 'monitor.log';
const POSITION_FILE = 'log-position.json';

export class LogService {
  private readonly recorders = new Map<string, JsonFileRecorder>();
  private readonly finishing = new Map<string, Promise<void>>();
  /** Containers whose last conversion waits for a reader (an --rm container nobody follows). */
  private readonly deferred = new Set<string>();
  private readonly followers = new Map<string, number>();
  private readonly signals = new Map<string, { version: number; waiters: (() => void)[] }>();

  constructor(readonly defaults: LogConfig) {
    validateLogConfig(defaults);
  }

  /** The log configuration a create request ends up with (daemon defaults applied, validated). */
  configFor(requested: Partial<LogConfig> | undefined): LogConfig {
    return resolveLogConfig(requested, this.defaults);
  }

  /** Docker's `LogPath`: `<dir>/<id>-json.log` for json-file, none for `none`. */
  logPath(driver: string, dir: string, id: string): string {
    if (driver === 'json-file') return path.join(dir, `${id}-json.log`);
    if (driver === 'k8s-file') return path.join(dir, 'ctr.log');
    return '';
  }

  private driverOf(c: LoggedContainer): string {
    return c.HostConfig.LogConfig?.Type ?? 'k8s-file';
  }

  /** What conmon is told for this container. */
  monitorLog(c: LoggedContainer): MonitorLog {
    const driver = this.driverOf(c);
    if (driver === 'json-file') return { driver: 'k8s-file', path: path.join(path.dirname(c.LogPath), MONITOR_FILE) };
    if (driver === 'k8s-file') {
      const max = c.HostConfig.LogConfig?.Config?.['max-size'];
      return { driver: 'k8s-file', path: c.LogPath, sizeMax: max ? rotationOf({ 'max-size': max }).maxSize : undefined };
    }
    return { driver: 'none' };
  }

  private recorder(c: LoggedContainer): JsonFileRecorder {
    let r = this.recorders.get(c.Id);
    if (!r) {
      const dir = path.dirname(c.LogPath);
      r = new JsonFileRecorder(
        { monitor: path.join(dir, MONITOR_FILE), json: c.LogPath, position: path.join(dir, POSITION_FILE) },
        rotationOf(c.HostConfig.LogConfig?.Config ?? {}),
        () => this.bump(c.Id),
        attrsJson(c.HostConfig.LogConfig?.Config ?? {}, c),
      );
      r.open();
      this.recorders.set(c.Id, r);
    }
    return r;
  }

  /** Before a (re)start: what the previous run left in conmon's file goes to the log first. */
  async beforeStart(c: LoggedContainer): Promise<void> {
    if (this.driverOf(c) !== 'json-file') return;
    await this.settled(c.Id);
    this.deferred.delete(c.Id);
    await this.recorder(c).exited();
  }

  /** The container runs (started, or found running after a berthd restart): follow its output. */
  following(c: LoggedContainer): void {
    if (this.driverOf(c) === 'json-file') this.recorder(c).follow();
  }

  /** A client attaches to the container's live output: conversion yields to it until it goes. */
  attached(c: LoggedContainer, session: { onClose(fn: () => void): void }): void {
    if (this.driverOf(c) !== 'json-file') return;
    const r = this.recorder(c);
    r.attached();
    session.onClose(() => r.detached());
  }

  /**
   * Its run ended: the rest of its output goes into the log. The exit is not held up by it (most
   * of a run's output is converted while it runs; what is left costs up to a few hundred ms for a
   * burst at the very end); reads through the API, `-f` followers and the next start wait for it.
   */
  exited(c: LoggedContainer, removing = false): Promise<void> {
    if (this.driverOf(c) !== 'json-file') return Promise.resolve();
    const r = this.recorder(c);
    if (removing && !this.followers.get(c.Id)) {
      // About to be removed and nobody follows it: converting now would only slow the removal
      // that `docker run --rm` waits for; a `logs` before the removal converts it then.
      r.stopWatching();
      this.deferred.add(c.Id);
      return Promise.resolve();
    }
    this.deferred.delete(c.Id);
    const p: Promise<void> = (this.finishing.get(c.Id) ?? Promise.resolve())
      .then(() => r.exited())
      .catch((err) => log.warn('cannot record the last output', { id: c.Id, err }))
      .finally(() => {
        if (this.finishing.get(c.Id) === p) this.finishing.delete(c.Id);
      });
    this.finishing.set(c.Id, p);
    return p;
  }

  /** Resolves once the last run's output is all in the log. */
  private settled(id: string): Promise<void> {
    return this.finishing.get(id) ?? Promise.resolve();
  }

  /** The container is removed. */
  forget(id: string): void {
    this.recorders.get(id)?.close();
    this.recorders.delete(id);
    this.signals.delete(id);
    this.deferred.delete(id);
  }

  /** berthd stops: recorders stop; conmon goes on writing, converted at the next start. */
  shutdown(): void {
    for (const r of this.recorders.values()) r.close();
    this.recorders.clear();
  }

  private bump(id: string): void {
    const s = this.signals.get(id);
    if (!s) return;
    s.version++;
    const w = s.waiters;
    s.waiters = [];
    for (const fn of w) fn();
  }

  private followSource(id: string, recorder: JsonFileRecorder, stopped: Promise<void>): FollowSource {
    let s = this.signals.get(id);
    if (!s) {
      s = { version: 0, waiters: [] };
      this.signals.set(id, s);
    }
    const sig = s;
    return {
      version: () => sig.version,
      changed: (v) => (sig.version !== v ? Promise.resolve() : new Promise((resolve) => sig.waiters.push(resolve))),
      stopped,
      generation: () => recorder.rotations,
    };
  }

  /**
   * Streams the container's log to `out`. `follow` (the container's current run) keeps the
   * stream open for new output until the run ends.
   */
  async read(c: LoggedContainer, o: ReadOptions, out: LogOutput, abort: AbortSignal, follow?: { stopped: Promise<void> }): Promise<void> {
    const driver = this.driverOf(c);
    if (driver === 'none' || !c.LogPath) throw notImplemented('configured logging driver does not support reading');
    if (driver === 'k8s-file') return readK8sLog(c.LogPath, o, out, follow?.stopped ?? Promise.resolve(), abort, Boolean(follow));
    const recorder = this.recorder(c);
    if (this.deferred.has(c.Id)) void this.exited(c);
    await this.settled(c.Id);
    await recorder.sync();
    if (!follow) return readJsonLog(c.LogPath, o, out, abort);
    this.followers.set(c.Id, (this.followers.get(c.Id) ?? 0) + 1);
    try {
      const stopped = follow.stopped.then(() => this.settled(c.Id));
      await readJsonLog(c.LogPath, o, out, abort, this.followSource(c.Id, recorder, stopped));
    } finally {
      const n = (this.followers.get(c.Id) ?? 1) - 1;
      if (n > 0) this.followers.set(c.Id, n);
      else this.followers.delete(c.Id);
    }
  }
}

/** `since`/`until` as the API sends them: unix seconds with an optional fraction (`1700000000.5`). */
export function parseLogTime(name: string, v: string | null): LogTime | undefined {
  if (v === null || v === '' || v === '0') return undefined;
  const m = /^(-?\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (!m) throw invalid(`invalid value for "${name}": "${v}"`);
  return { s: Number(m[1]), ns: Number((m[2] ?? '').padEnd(9, '0')) };
}
