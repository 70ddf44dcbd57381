/**
 * The multiplexed stdout/stderr stream of attach, exec and logs for non-TTY containers:
 * frames of `[type,0,0,0,size(be32)]` + payload; type 0 stdin (shown on stdout), 1 stdout, 2 stderr.
 */

export type DemuxSink = (stream: number, payload: Buffer) => void;

/** Incremental frame parser: feed it chunks of any size; it calls `sink` once per complete payload. */
export class Demuxer {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly sink: DemuxSink) {}

  push(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (buf.length >= 8) {
      const size = buf.readUInt32BE(4);
      if (buf.length < 8 + size) break;
      const type = buf[0]!;
      const payload = buf.subarray(8, 8 + size);
      buf = buf.subarray(8 + size);
      if (size > 0) this.sink(type, payload);
    }
    this.pending = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }

  /** Bytes left over that do not form a whole frame (a truncated stream). */
  get leftover(): number {
    return this.pending.length;
  }
}

/** Splits a whole buffer at once (for tests and small bodies). */
export function demuxAll(data: Buffer): { stdout: Buffer; stderr: Buffer } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  new Demuxer((t, p) => (t === 2 ? err : out).push(Buffer.from(p))).push(data);
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}
