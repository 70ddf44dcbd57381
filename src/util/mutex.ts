/** Runs async sections one after another, in call order; a failed section does not block the next. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}

/** Runs at most `size` async sections at once; the others start in call order as slots free up. */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly size: number) {}

  /** True when a section started now would have to wait. */
  get full(): boolean {
    return this.active >= Math.max(1, this.size);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.full) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      // The slot passes straight to the next waiter, so `active` stays counted.
      if (next) next();
      else this.active--;
    }
  }
}
