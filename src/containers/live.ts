/**
 * What the container service keeps in memory per container while the daemon runs: the lock that
 * orders its life-cycle operations, attach sessions waiting for its next start, `wait` callers,
 * the exit watch, the restart timer and the promise of the current run's end.
 */
import type { ContainerRecord } from '../model/container.js';
import type { AttachSession } from './attach.js';

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';
export type WaitResult = { StatusCode: number; Error: { Message: string } | null };

interface Waiter {
  condition: WaitCondition;
  resolve: (r: WaitResult) => void;
}

export interface Live {
  /** Sessions waiting for the next start (attach before start, as `docker run` does). */
  pendingAttach: Set<AttachSession>;
  waiters: Set<Waiter>;
  stopExitWatch?: () => void;
  /** Serialises start/stop/remove of one container. */
  lock: Promise<unknown>;
  restartTimer?: NodeJS.Timeout;
  /** Set once the exit handling released the runtime, network, volumes and rootfs mount. */
  released?: boolean;
  /** Resolves when the current run ends (for logs -f). */
  stopped?: Promise<void>;
  markStopped?: () => void;
}

export class LiveTable {
  private readonly byId = new Map<string, Live>();

  /** The container's entry, made on first use. */
  of(id: string): Live {
    let l = this.byId.get(id);
    if (!l) {
      l = { pendingAttach: new Set(), waiters: new Set(), lock: Promise.resolve() };
      this.byId.set(id, l);
    }
    return l;
  }

  peek(id: string): Live | undefined {
    return this.byId.get(id);
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  all(): IterableIterator<Live> {
    return this.byId.values();
  }

  /** Runs `fn` after any other life-cycle operation on the same container has finished. */
  serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const l = this.of(id);
    const next = l.lock.then(fn, fn);
    l.lock = next.catch(() => {});
    return next;
  }

  /** `POST /containers/{id}/wait`: resolves on the condition; `cancel` when the client goes. */
  wait(c: ContainerRecord, condition: WaitCondition): Promise<WaitResult> & { cancel(): void } {
    const live = this.of(c.Id);
    let waiter: Waiter | undefined;
    const p = new Promise<WaitResult>((resolve) => {
      if (condition === 'not-running' && !c.State.Running && c.State.Status !== 'restarting') {
        resolve({ StatusCode: c.State.ExitCode, Error: null });
        return;
      }
      waiter = { condition, resolve };
      live.waiters.add(waiter);
    }) as Promise<WaitResult> & { cancel(): void };
    p.cancel = () => {
      if (waiter) live.waiters.delete(waiter);
    };
    return p;
  }

  /** Wakes the waiters an exit (or the removal) satisfies. */
  notify(c: ContainerRecord, event: 'next-exit' | 'removed'): void {
    const live = this.byId.get(c.Id);
    if (!live) return;
    for (const w of [...live.waiters]) {
      const fire = event === 'removed' ? true : w.condition !== 'removed';
      if (!fire) continue;
      live.waiters.delete(w);
      w.resolve({ StatusCode: c.State.ExitCode, Error: null });
    }
  }

  /** Resolves when the current run of the container ends (immediately if it is not running). */
  whenStopped(c: ContainerRecord): Promise<void> {
    if (!c.State.Running && c.State.Status !== 'restarting') return Promise.resolve();
    return this.of(c.Id).stopped ?? Promise.resolve();
  }
}
