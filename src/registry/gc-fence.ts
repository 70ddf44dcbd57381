/**
 * The fence between garbage collection and writers, across every process on one storage root.
 *
 * A writer's critical section is the short step that makes a blob referenced or relies on it
 * being there: verifying a manifest's blobs and writing it, linking a finished (or mounted, or
 * already stored) blob into a repository. GC's critical section is its sweep. The two never
 * overlap, by a two-flag protocol on the shared filesystem (no cross-host locks needed, only
 * `open(O_EXCL)` and close-to-open consistency):
 *
 *   writer: create  <root>/gc/writers/<uuid>, then look for <root>/gc/sweeping;
 *           if it is there, remove the intent, wait for the sweep to end, start over.
 *   gc:     create  <root>/gc/sweeping (exclusively), then wait until no writer intent is left.
 *
 * Each side writes its flag before reading the other's, so at least one of them sees the other.
 * A crashed process leaves its flag behind: intents and sweep flags not refreshed for `staleMs`
 * (or naming a dead process on this host) are ignored, and a writer removes a stale sweep flag.
 * A sweep refreshes its flag while it runs and checks that it still owns it before each delete.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { errnoCode } from '../util/errors.js';

export interface FenceOptions {
  /** A flag not refreshed for this long belongs to a crashed process (default 60 s). */
  staleMs?: number;
  /** How often a waiting side looks again (default 50 ms). */
  pollMs?: number;
  /** Called once when a writer starts waiting for a sweep (for the log). */
  onWait?: () => void;
}

interface Flag {
  token: string;
  host: string;
  pid: number;
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

export class GcFence {
  private readonly dir: string;
  private readonly writersDir: string;
  private readonly sweepFile: string;
  private readonly staleMs: number;
  private readonly pollMs: number;
  /** Called once when a writer starts waiting for a sweep (for the log). */
  onWait?: () => void;

  constructor(root: string, opts: FenceOptions = {}) {
    this.onWait = opts.onWait;
    this.dir = path.join(root, 'gc');
    this.writersDir = path.join(this.dir, 'writers');
    this.sweepFile = path.join(this.dir, 'sweeping');
    this.staleMs = opts.staleMs ?? 60_000;
    this.pollMs = opts.pollMs ?? 50;
  }

  /** A flag file's owner, or undefined when it is gone or stale. */
  private async live(file: string): Promise<Flag | undefined> {
    let st: import('node:fs').Stats;
    try {
      st = await fs.stat(file);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    if (Date.now() - st.mtimeMs > this.staleMs) return undefined;
    let flag: Flag;
    try {
      flag = JSON.parse(await fs.readFile(file, 'utf8')) as Flag;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      // Just created, not filled in yet: live (its owner is about to write it).
      if (err instanceof SyntaxError) return { token: '', host: '', pid: 0 };
      throw err;
    }
    if (flag.host === hostname() && flag.pid && !processAlive(flag.pid)) return undefined;
    return flag;
  }

  /** Runs a writer's critical section outside any sweep. */
  async write<T>(fn: () => Promise<T>): Promise<T> {
    await fs.mkdir(this.writersDir, { recursive: true });
    let waited = false;
    for (;;) {
      const intent = path.join(this.writersDir, randomUUID());
      await fs.writeFile(intent, JSON.stringify({ token: '', host: hostname(), pid: process.pid }), {
        flag: 'wx',
      });
      let sweep: Flag | undefined;
      try {
        sweep = await this.live(this.sweepFile);
      } catch (err) {
        await fs.rm(intent, { force: true });
        throw err;
      }
      if (!sweep) {
        // A stale sweep flag of a crashed gc: out of the way, so the next gc can start.
        await this.removeStaleSweep();
        try {
          return await fn();
        } finally {
          await fs.rm(intent, { force: true });
        }
      }
      await fs.rm(intent, { force: true });
      if (!waited) {
        waited = true;
        this.onWait?.();
      }
      while (await this.live(this.sweepFile)) await delay(this.pollMs);
    }
  }

  private async removeStaleSweep(): Promise<void> {
    try {
      await fs.stat(this.sweepFile);
    } catch {
      return;
    }
    if (!(await this.live(this.sweepFile))) await fs.rm(this.sweepFile, { force: true });
  }

  /**
   * Runs a sweep with every writer held off. Throws if another gc is sweeping. `fn` gets
   * `stillOwned()`, to check before each irreversible step that the flag was not broken as stale.
   */
  async sweep<T>(fn: (stillOwned: () => Promise<boolean>) => Promise<T>): Promise<T> {
    await fs.mkdir(this.writersDir, { recursive: true });
    await this.removeStaleSweep();
    const token = randomUUID();
    try {
      await fs.writeFile(this.sweepFile, JSON.stringify({ token, host: hostname(), pid: process.pid }), {
        flag: 'wx',
      });
    } catch (err) {
      if (errnoCode(err) === 'EEXIST')
        throw new Error(`another gc is running on this root (${this.sweepFile})`);
      throw err;
    }
    const refresh = setInterval(
      () => {
        const now = new Date();
        fs.utimes(this.sweepFile, now, now).catch(() => {});
      },
      Math.max(this.staleMs / 6, 10),
    );
    try {
      // Writers inside their critical section finish it; new ones wait for us.
      for (;;) {
        let busy = false;
        for (const name of await fs.readdir(this.writersDir)) {
          const file = path.join(this.writersDir, name);
          if (await this.live(file)) busy = true;
          else await fs.rm(file, { force: true }); // left by a crashed writer
        }
        if (!busy) break;
        await delay(this.pollMs);
      }
      const stillOwned = async () =>
        (await this.live(this.sweepFile).catch(() => undefined))?.token === token;
      return await fn(stillOwned);
    } finally {
      clearInterval(refresh);
      if ((await this.live(this.sweepFile).catch(() => undefined))?.token === token)
        await fs.rm(this.sweepFile, { force: true });
    }
  }
}
