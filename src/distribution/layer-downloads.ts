/**
 * Layer downloads in progress in this daemon, by diff ID: a pull that needs a layer another pull
 * is downloading waits for that download instead of fetching the same bytes again (as dockerd's
 * download manager does). If that download fails, the waiter downloads the layer itself.
 */
export class LayerDownloads {
  private readonly running = new Map<string, Promise<void>>();

  /** The download of `diffId` in progress, if any (settles when it ends, rejects if it failed). */
  find(diffId: string): Promise<void> | undefined {
    return this.running.get(diffId);
  }

  /** Registers a download of `diffId` starting now; call the result when it ends. */
  start(diffId: string): (err?: unknown) => void {
    let settle!: (err?: unknown) => void;
    const p = new Promise<void>((resolve, reject) => {
      settle = (err) => (err === undefined ? resolve() : reject(err));
    });
    p.catch(() => {}); // nobody waiting is fine
    this.running.set(diffId, p);
    return (err?: unknown) => {
      if (this.running.get(diffId) === p) this.running.delete(diffId);
      settle(err);
    };
  }
}
