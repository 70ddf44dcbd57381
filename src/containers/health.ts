/**
 * Healthchecks as Docker runs them: the container's `Healthcheck` (its own, merged over the
 * image's `HEALTHCHECK`) is probed by an exec inside the running container, every `Interval`
 * (every `StartInterval` while the start period lasts and no probe has passed yet). Each result
 * lands in `State.Health` (the last 5 kept); `Retries` consecutive failures outside the start
 * period make it `unhealthy`, one success makes it `healthy`; every change of status is published
 * as a `health_status: <status>` event. Probing stops with the container and resumes when berthd
 * re-adopts it after a restart.
 */
import { invalid } from '../util/errors.js';
import { log } from '../util/log.js';
import type { ContainerConfig, ContainerRecord } from '../model/container.js';

export type Healthcheck = NonNullable<ContainerConfig['Healthcheck']>;

export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** Docker's defaults (nanoseconds are the API's unit). */
const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_START_INTERVAL_MS = 5_000;
const DEFAULT_RETRIES = 3;
const MAX_LOG_ENTRIES = 5;
/** Docker keeps at most this many bytes of a probe's output. */
export const MAX_PROBE_OUTPUT = 4096;

/** The container's healthcheck over the image's: empty or zero fields take the image's value. */
export function mergeHealthcheck(own: Healthcheck | undefined | null, image: Healthcheck | undefined | null): Healthcheck | undefined {
  if (!own) return image ?? undefined;
  if (!image) return own;
  const merged: Healthcheck = { ...own };
  if (!merged.Test?.length) merged.Test = image.Test;
  if (!merged.Interval) merged.Interval = image.Interval;
  if (!merged.Timeout) merged.Timeout = image.Timeout;
  if (!merged.StartPeriod) merged.StartPeriod = image.StartPeriod;
  if (!merged.StartInterval) merged.StartInterval = image.StartInterval;
  if (!merged.Retries) merged.Retries = image.Retries;
  return merged;
}

/** Refuses what Docker refuses at create, with its words. */
export function validateHealthcheck(h: Healthcheck | undefined): void {
  if (!h) return;
  const min = 1_000_000; // 1ms in ns
  // null (as docker-py sends an unset field) counts as 0: Docker's default.
  const check = (v: number | undefined | null, what: string) => {
    if (v !== undefined && v !== null && v !== 0 && (typeof v !== 'number' || v < min)) throw invalid(`${what} in Healthcheck cannot be less than 1ms`);
  };
  check(h.Interval, 'Interval');
  check(h.Timeout, 'Timeout');
  check(h.StartPeriod, 'StartPeriod');
  check(h.StartInterval, 'StartInterval');
  if (typeof h.Retries === 'number' && h.Retries < 0) throw invalid('Retries in Healthcheck cannot be negative');
}

/** The probe's argv, or undefined when the container has no (or a disabled) healthcheck. */
export function probeCommand(h: Healthcheck | undefined, shell: string[] = ['/bin/sh', '-c']): string[] | undefined {
  const test = h?.Test;
  if (!test?.length) return undefined;
  switch (test[0]) {
    case 'NONE':
      return undefined;
    case 'CMD':
      return test.length > 1 ? test.slice(1) : undefined;
    case 'CMD-SHELL':
      return test.length > 1 ? [...shell, test.slice(1).join(' ')] : undefined;
    default:
      // Docker treats a bare list as CMD-SHELL's argument list (old API clients).
      return [...shell, test.join(' ')];
  }
}

/** Go's time.Duration text for whole milliseconds ("30s", "1m30s", "500ms"), as Docker prints the timeout. */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}

const nsToMs = (ns: number | undefined, dflt: number) => (ns && ns > 0 ? Math.max(1, Math.round(ns / 1e6)) : dflt);

export interface HealthHost {
  /** Runs `cmd` in the running container; resolves with its exit code and combined output (ExitCode -1 and Docker's message on timeout). */
  probe(c: ContainerRecord, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }>;
  saveState(c: ContainerRecord): Promise<void>;
  publish(c: ContainerRecord, action: string): void;
}

interface Monitor {
  timer?: NodeJS.Timeout;
  stopped: boolean;
}

export class HealthMonitors {
  private readonly monitors = new Map<string, Monitor>();

  constructor(private readonly host: HealthHost) {}

  /**
   * Starts probing a container that has just started (`fresh`: its health starts over as
   * `starting`, as Docker does at every start) or was re-adopted after a daemon restart (keeps
   * its recorded health).
   */
  start(c: ContainerRecord, fresh: boolean): void {
    this.stop(c.Id);
    const cmd = probeCommand(c.Config.Healthcheck, c.Config.Shell?.length ? c.Config.Shell : undefined);
    if (!cmd) return;
    if (fresh || !c.State.Health) c.State.Health = { Status: 'starting', FailingStreak: 0, Log: c.State.Health?.Log ?? [] };
    const m: Monitor = { stopped: false };
    this.monitors.set(c.Id, m);
    this.schedule(c, m, cmd);
  }

  stop(id: string): void {
    const m = this.monitors.get(id);
    if (!m) return;
    m.stopped = true;
    if (m.timer) clearTimeout(m.timer);
    this.monitors.delete(id);
  }

  stopAll(): void {
    for (const id of [...this.monitors.keys()]) this.stop(id);
  }

  private inStartPeriod(c: ContainerRecord, at: number): boolean {
    const period = nsToMs(c.Config.Healthcheck?.StartPeriod, 0);
    return at - Date.parse(c.State.StartedAt) < period;
  }

  private nextDelay(c: ContainerRecord): number {
    const h = c.Config.Healthcheck;
    const interval = nsToMs(h?.Interval, DEFAULT_INTERVAL_MS);
    if (c.State.Health?.Status === 'starting' && this.inStartPeriod(c, Date.now())) return nsToMs(h?.StartInterval, DEFAULT_START_INTERVAL_MS);
    return interval;
  }

  private schedule(c: ContainerRecord, m: Monitor, cmd: string[]): void {
    if (m.stopped) return;
    m.timer = setTimeout(() => void this.runOnce(c, m, cmd).finally(() => this.schedule(c, m, cmd)), this.nextDelay(c));
    m.timer.unref();
  }

  private async runOnce(c: ContainerRecord, m: Monitor, cmd: string[]): Promise<void> {
    if (m.stopped || !c.State.Running || c.State.Paused) return;
    const timeoutMs = nsToMs(c.Config.Healthcheck?.Timeout, DEFAULT_TIMEOUT_MS);
    const start = new Date();
    let result: { exitCode: number; output: string };
    try {
      result = await this.host.probe(c, cmd, timeoutMs);
    } catch (err) {
      // Docker records a probe that could not run as a failure with the error as output.
      result = { exitCode: -1, output: (err as Error).message };
    }
    // The container stopped while the probe ran: its result means nothing any more.
    if (m.stopped || !c.State.Running) return;
    this.record(c, { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: result.exitCode, Output: result.output }, start.getTime());
    await this.host.saveState(c).catch((err) => log.warn('cannot save health state', { id: c.Id, err }));
  }

  /** Applies one probe result to `State.Health`, publishing a change of status. */
  private record(c: ContainerRecord, r: HealthResult, startedAt: number): void {
    const h = c.State.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    const before = h.Status;
    h.Log = [...h.Log, r].slice(-MAX_LOG_ENTRIES);
    if (r.ExitCode === 0) {
      h.FailingStreak = 0;
      h.Status = 'healthy';
    } else if (!(h.Status === 'starting' && this.inStartPeriod(c, startedAt))) {
      // Failures during the start period do not count until a probe has passed once.
      h.FailingStreak++;
      if (h.FailingStreak >= (c.Config.Healthcheck?.Retries || DEFAULT_RETRIES)) h.Status = 'unhealthy';
    }
    c.State.Health = h;
    if (h.Status !== before) this.host.publish(c, `health_status: ${h.Status}`);
  }
}
