/**
 * What `docker logs` receives: entries batched into few large writes. Without a TTY, consecutive
 * entries of one stream share one multiplexed frame (8-byte header: stream, 0, 0, 0, length);
 * with one, bytes go raw. Writers call flush() after each batch of input: it waits for the client
 * to take the bytes (backpressure), so memory stays at one batch whatever the log's size. Batch
 * buffers are reused once written out (fresh 256 KiB buffers per batch grew RSS by megabytes
 * before the GC noticed them).
 */

const CAP = 256 * 1024;
export const STREAM_STDOUT = 1;
export const STREAM_STDERR = 2;
const NEWLINE = Buffer.from('\n');

export interface LogSink {
  /** As `Writable.write`: false asks the caller to wait for drain(); `done` once b is written out. */
  write(b: Buffer, done: () => void): boolean;
  drain(): Promise<void>;
}

export class LogOutput {
  private readonly free: Buffer[] = [];
  private buf: Buffer = Buffer.allocUnsafe(CAP);
  private pos = 0;
  private header = -1;
  private headerStream = 0;
  private queued: Buffer[] = [];

  constructor(
    private readonly sink: LogSink,
    readonly tty: boolean,
    readonly timestamps: boolean,
  ) {}

  /**
   * One entry: `src[start, end)`, then a newline when `nl`; `stamp` (`<time> `) is printed first
   * when timestamps are asked for.
   */
  add(stream: number, src: Buffer, start: number, end: number, stamp: Buffer | undefined, nl = false): void {
    if (!this.timestamps) stamp = undefined;
    const len = end - start + (stamp ? stamp.length : 0) + (nl ? 1 : 0);
    const framing = this.tty || (this.header >= 0 && this.headerStream === stream) ? 0 : 8;
    if (this.pos + len + framing > CAP) {
      this.cut();
      if (len + 8 > CAP) {
        // Larger than a batch: its own frame, written as it is.
        if (!this.tty) this.queued.push(frameHeader(stream, len));
        if (stamp) this.queued.push(stamp);
        this.queued.push(Buffer.from(src.subarray(start, end))); // a copy: callers reuse their buffers
        if (nl) this.queued.push(NEWLINE);
        return;
      }
    }
    if (!this.tty && (this.header < 0 || this.headerStream !== stream)) {
      this.closeFrame();
      this.header = this.pos;
      this.headerStream = stream;
      this.buf.writeUInt32BE(stream << 24, this.pos);
      this.pos += 8;
    }
    const buf = this.buf;
    let o = this.pos;
    if (stamp) o += stamp.copy(buf, o);
    const n = end - start;
    if (n > 48) o += src.copy(buf, o, start, end);
    else {
      // A short line: byte by byte is cheaper than a native call.
      for (let k = 0; k < n; k++) buf[o + k] = src[start + k];
      o += n;
    }
    if (nl) buf[o++] = 0x0a;
    this.pos = o;
  }

  /** Hands the batch to the client; resolves once it may take more. */
  async flush(): Promise<void> {
    this.cut();
    if (this.queued.length === 0) return;
    const q = this.queued;
    this.queued = [];
    let ok = true;
    for (const b of q) {
      // A batch buffer goes back to the pool once written; other pieces are not ours to reuse.
      const whole = b.length > 0 && b.buffer.byteLength === CAP && b.byteOffset === 0 ? Buffer.from(b.buffer, 0, CAP) : undefined;
      ok = this.sink.write(b, () => {
        if (whole && this.free.length < 4) this.free.push(whole);
      });
    }
    if (!ok) await this.sink.drain();
  }

  private closeFrame(): void {
    if (this.header >= 0) this.buf.writeUInt32BE(this.pos - this.header - 8, this.header + 4);
    this.header = -1;
  }

  private cut(): void {
    this.closeFrame();
    if (this.pos === 0) return;
    this.queued.push(this.buf.subarray(0, this.pos));
    this.buf = this.free.pop() ?? Buffer.allocUnsafe(CAP);
    this.pos = 0;
  }
}

function frameHeader(stream: number, len: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(len, 4);
  return h;
}
