/**
 * Reads a json-file log for `docker logs`: the rotated files (`.N` … `.1`, gzipped or not) and the
 * current one, with tail/since/until, and with follow across rotations until the container stops.
 *
 * Per-line cost is what decides the speed here: lines are found with Buffer.indexOf and dockerd's
 * own shape (`{"log":"…","stream":"…","time":"…"}`) is read in place; a log string without any
 * backslash is the payload byte for byte, so it is copied, never decoded. Lines in another shape
 * go through JSON.parse; lines that are not JSON at all (a damaged file) are skipped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createGunzip } from 'node:zlib';
import { errnoCode } from '../../util/errors.js';
import { fixedTime, timeOf } from './json-format.js';
import { type LogOutput, STREAM_STDERR, STREAM_STDOUT } from './output.js';

const CHUNK = 256 * 1024;

export interface LogTime {
  s: number;
  ns: number;
}

export interface ReadOptions {
  stdout: boolean;
  stderr: boolean;
  since?: LogTime;
  until?: LogTime;
  /** Entries from the end; undefined = all. */
  tail?: number;
}

/** What a follower needs from the writer of the log. */
export interface FollowSource {
  /** Increases after every write to the log. */
  version(): number;
  /** Resolves at the next write after `version` (at once if there was one). */
  changed(version: number): Promise<void>;
  /** Resolves when the container's run ended and its last output is in the log. */
  stopped: Promise<void>;
  /** How many times the log was rotated (the current file's generation). */
  generation(): number;
}

type Source = { kind: 'plain'; fd: number; size: number } | { kind: 'gz'; fd: number };

/** Opens every file of the log at one instant (rotation happens between ticks, never during). */
function openAll(file: string): { sources: Source[]; current?: { fd: number; size: number; ino: number } } {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const rotated = new Map<number, string>();
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {}
  for (const n of names) {
    if (!n.startsWith(`${base}.`)) continue;
    const m = /^\.(\d+)(\.gz)?$/.exec(n.slice(base.length));
    if (!m) continue;
    const i = Number(m[1]);
    // An uncompressed `.N` wins over `.N.gz`: it is being compressed and is whole.
    if (!rotated.has(i) || !m[2]) rotated.set(i, n);
  }
  const sources: Source[] = [];
  for (const i of [...rotated.keys()].sort((a, b) => b - a)) {
    const n = rotated.get(i)!;
    try {
      const fd = fs.openSync(path.join(dir, n), 'r');
      sources.push(n.endsWith('.gz') ? { kind: 'gz', fd } : { kind: 'plain', fd, size: fs.fstatSync(fd).size });
    } catch {}
  }
  let current: { fd: number; size: number; ino: number } | undefined;
  try {
    const fd = fs.openSync(file, 'r');
    const st = fs.fstatSync(fd);
    current = { fd, size: st.size, ino: st.ino };
    sources.push({ kind: 'plain', fd, size: st.size });
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  return { sources, current };
}

function readAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Parses lines and hands the wanted ones to the output. */
class LineReader {
  private carry: Buffer = Buffer.alloc(0);
  /** Set when an entry is past `until`: reading stops. */
  done = false;
  private readonly needTime: boolean;
  /** The last time stamp seen (bytes), its `-t` prefix and its value: runs of lines share one. */
  private readonly lastTime = Buffer.alloc(48);
  private lastTimeLen = 0;
  private stamp?: Buffer;
  private time?: LogTime;

  constructor(
    private readonly o: ReadOptions,
    private readonly out: LogOutput,
  ) {
    this.needTime = out.timestamps || o.since !== undefined || o.until !== undefined;
  }

  /** Where a carried line start and the next chunk are joined (reused: no 256 KiB garbage per chunk). */
  private work: Buffer = Buffer.alloc(0);

  /** Feeds bytes; complete lines are emitted, a trailing part waits for the rest. */
  feed(chunk: Buffer): void {
    let b = chunk;
    if (this.carry.length) {
      const total = this.carry.length + chunk.length;
      if (this.work.length < total) this.work = Buffer.allocUnsafe(Math.max(total, 2 * CHUNK));
      this.carry.copy(this.work, 0);
      chunk.copy(this.work, this.carry.length);
      b = this.work.subarray(0, total);
      this.carry = Buffer.alloc(0);
    }
    const n = b.length;
    let p = 0;
    while (p < n && !this.done) {
      const e = this.fast(b, p, n);
      if (e >= 0) {
        p = e + 1;
        continue;
      }
      const nl = b.indexOf(10, p);
      if (nl < 0) break;
      this.slow(b, p, nl);
      p = nl + 1;
    }
    if (p < n && !this.done) this.carry = Buffer.from(b.subarray(p));
  }

  /** Drops a trailing part (a file's last line without newline, cut off by a crash). */
  reset(): void {
    this.carry = Buffer.alloc(0);
  }

  /**
   * dockerd's own shape, read in place: `{"log":"<no backslash>","stream":"stdout","time":"…"}\n`.
   * Returns the index of the line's newline, or -1 for anything else (or a line not whole yet).
   */
  private fast(b: Buffer, s: number, n: number): number {
    if (s + 60 > n || b[s] !== 0x7b || b[s + 1] !== 0x22 || b[s + 2] !== 0x6c || b[s + 5] !== 0x22 || b[s + 6] !== 0x3a || b[s + 7] !== 0x22) return -1;
    let q = s + 8;
    let nl = false;
    for (; q < n; q++) {
      const c = b[q];
      if (c === 0x22) break;
      if (c === 0x5c) {
        // The one escape every whole line has: its final \n.
        if (b[q + 1] !== 0x6e || b[q + 2] !== 0x22) return -1;
        nl = true;
        q += 2;
        break;
      }
      if (c === 0x0a) return -1;
    }
    // ","stream":"stdout","time":"
    const t = q + 28;
    if (t + 22 > n || b[q + 1] !== 0x2c || b[q + 3] !== 0x73 || b[q + 11] !== 0x22 || b[q + 18] !== 0x22 || b[t - 1] !== 0x22) return -1;
    const stream = b[q + 15] === 0x6f ? STREAM_STDOUT : b[q + 15] === 0x65 ? STREAM_STDERR : 0;
    if (!stream) return -1;
    let te = t + 20;
    const limit = Math.min(n - 2, t + 40);
    while (te < limit && b[te] !== 0x22) te++;
    if (b[te] !== 0x22 || b[te + 1] !== 0x7d || b[te + 2] !== 0x0a) return -1;
    this.emit(stream, b, s + 8, nl ? q - 2 : q, nl, b, t, te);
    return te + 2;
  }

  /** Any other line: JSON.parse; not JSON at all (a damaged file) is skipped. */
  private slow(b: Buffer, s: number, e: number): void {
    let j: { log?: unknown; stream?: unknown; time?: unknown };
    try {
      j = JSON.parse(b.toString('utf8', s, e)) as typeof j;
    } catch {
      return;
    }
    if (typeof j !== 'object' || j === null) return;
    const stream = j.stream === 'stderr' ? STREAM_STDERR : STREAM_STDOUT;
    const payload = Buffer.from(typeof j.log === 'string' ? j.log : '', 'utf8');
    const time = Buffer.from(typeof j.time === 'string' ? j.time : '', 'latin1');
    this.emit(stream, payload, 0, payload.length, false, time, 0, time.length);
  }

  private emit(stream: number, b: Buffer, s: number, e: number, nl: boolean, tb: Buffer, ts: number, te: number): void {
    if (stream === STREAM_STDOUT ? !this.o.stdout : !this.o.stderr) return;
    if (this.needTime) {
      const len = te - ts;
      if (len !== this.lastTimeLen || len > this.lastTime.length || tb.compare(this.lastTime, 0, len, ts, te) !== 0) {
        const text = tb.toString('latin1', ts, te);
        this.time = timeOf(text);
        this.stamp = this.time ? Buffer.from(`${fixedTime(text)} `, 'latin1') : undefined;
        if (len <= this.lastTime.length) tb.copy(this.lastTime, 0, ts, te);
        this.lastTimeLen = len;
      }
      const t = this.time;
      if (t) {
        if (this.o.since && before(t, this.o.since)) return;
        if (this.o.until && before(this.o.until, t)) {
          this.done = true;
          return;
        }
      }
    }
    this.out.add(stream, b, s, e, this.stamp, nl);
  }
}

function before(a: LogTime, b: LogTime): boolean {
  return a.s < b.s || (a.s === b.s && a.ns < b.ns);
}

/** Where reading starts so that the last `n` entries come out: source index and offset or lines to skip. */
async function tailStart(sources: Source[], n: number): Promise<{ index: number; offset: number; skipLines: number }> {
  let need = n;
  for (let i = sources.length - 1; i >= 0; i--) {
    const src = sources[i];
    if (src.kind === 'plain') {
      const buf = Buffer.allocUnsafe(CHUNK);
      let end = src.size;
      let seen = 0;
      while (end > 0) {
        const start = Math.max(0, end - CHUNK);
        const got = await readAt(src.fd, buf, 0, end - start, start);
        let k = got;
        while (k > 0) {
          const nl = buf.lastIndexOf(10, k - 1);
          if (nl < 0) break;
          // The newline ending the last line counts as the first; the one before line 1 of n is n+1.
          seen++;
          if (seen === need + 1) return { index: i, offset: start + nl + 1, skipLines: 0 };
          k = nl;
        }
        end = start;
      }
      need -= seen;
    } else {
      let lines = 0;
      for await (const chunk of gunzip(src.fd)) {
        for (let k = chunk.indexOf(10); k >= 0; k = chunk.indexOf(10, k + 1)) lines++;
      }
      if (lines >= need) return { index: i, offset: 0, skipLines: lines - need };
      need -= lines;
    }
    if (need <= 0) return { index: i, offset: 0, skipLines: 0 };
  }
  return { index: 0, offset: 0, skipLines: 0 };
}

function gunzip(fd: number): AsyncIterable<Buffer> {
  return fs.createReadStream('', { fd, autoClose: false, start: 0, highWaterMark: CHUNK }).pipe(createGunzip({ chunkSize: CHUNK }));
}

/** Skips the first `n` lines of what passes through. */
function skipLines(n: number): (chunk: Buffer) => Buffer | undefined {
  let left = n;
  return (chunk) => {
    let p = 0;
    while (left > 0) {
      const nl = chunk.indexOf(10, p);
      if (nl < 0) return undefined;
      p = nl + 1;
      left--;
    }
    return p === 0 ? chunk : chunk.subarray(p);
  };
}

/**
 * Streams the log to `out`. With `follow`, goes on with what is written next (across rotations)
 * until the container has stopped and everything is read, or `abort` fires.
 */
export async function readJsonLog(file: string, o: ReadOptions, out: LogOutput, abort: AbortSignal, follow?: FollowSource): Promise<void> {
  // Same tick as the opens: the generation is that of the current file opened.
  const generation = follow?.generation() ?? 0;
  const { sources, current } = openAll(file);
  const reader = new LineReader(o, out);
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0; // read position in the current file
  try {
    let first = { index: 0, offset: 0, skipLines: 0 };
    if (o.tail !== undefined) first = o.tail === 0 ? { index: sources.length, offset: 0, skipLines: 0 } : await tailStart(sources, o.tail);
    for (let i = first.index; i < sources.length && !reader.done && !abort.aborted; i++) {
      const src = sources[i];
      const isCurrent = current !== undefined && src.kind === 'plain' && src.fd === current.fd;
      if (src.kind === 'plain') {
        let at = i === first.index ? first.offset : 0;
        while (at < src.size && !reader.done && !abort.aborted) {
          const n = await readAt(src.fd, buf, 0, Math.min(CHUNK, src.size - at), at);
          if (n === 0) break;
          at += n;
          reader.feed(buf.subarray(0, n));
          await out.flush();
        }
        if (isCurrent) pos = at;
      } else {
        const skip = skipLines(i === first.index ? first.skipLines : 0);
        for await (const chunk of gunzip(src.fd)) {
          const rest = skip(chunk);
          if (rest) reader.feed(rest);
          await out.flush();
          if (reader.done || abort.aborted) break;
        }
      }
      if (!isCurrent) reader.reset();
    }
    if (o.tail === 0 && current) pos = current.size;
    if (!follow || !current || reader.done) return;
    await followCurrent(file, current.fd, generation, pos, reader, out, buf, abort, follow);
  } finally {
    for (const s of sources) fs.closeSync(s.fd);
  }
}

/** Reads a whole rotated file of the log (gzipped or not), opened at the moment it is named. */
async function readWhole(fd: number, gz: boolean, reader: LineReader, out: LogOutput, buf: Buffer, abort: AbortSignal): Promise<void> {
  if (gz) {
    for await (const chunk of gunzip(fd)) {
      reader.feed(chunk);
      await out.flush();
      if (reader.done || abort.aborted) break;
    }
  } else {
    for (let at = 0; !reader.done && !abort.aborted; ) {
      const n = await readAt(fd, buf, 0, CHUNK, at);
      if (n === 0) break;
      at += n;
      reader.feed(buf.subarray(0, n));
      await out.flush();
    }
  }
  reader.reset();
}

/**
 * Follows the log from the current file. Rotations are counted by the writer: the file that came
 * after ours is the one of the next generation, `.<generations since>` now (or the current file),
 * so that a follower slower than several rotations still reads every file that is kept.
 */
async function followCurrent(
  file: string,
  firstFd: number,
  firstGeneration: number,
  startPos: number,
  reader: LineReader,
  out: LogOutput,
  buf: Buffer,
  abort: AbortSignal,
  follow: FollowSource,
): Promise<void> {
  let fd = firstFd;
  let gen = firstGeneration;
  let pos = startPos;
  let stopped = false;
  void follow.stopped.then(() => (stopped = true));
  const aborted = new Promise<void>((resolve) => abort.addEventListener('abort', () => resolve(), { once: true }));
  const drain = async () => {
    for (;;) {
      const n = await readAt(fd, buf, 0, CHUNK, pos);
      if (n === 0) return;
      pos += n;
      reader.feed(buf.subarray(0, n));
      await out.flush();
      if (reader.done || abort.aborted) return;
    }
  };
  try {
    while (!abort.aborted && !reader.done) {
      const v = follow.version();
      const wasStopped = stopped;
      await drain();
      if (reader.done || abort.aborted) return;
      if (follow.generation() !== gen) {
        // Ours was rotated out: it is complete now; finish it, then the files that followed it.
        await drain();
        if (fd !== firstFd) fs.closeSync(fd);
        fd = -1;
        reader.reset();
        for (let next = gen + 1; !reader.done && !abort.aborted; next++) {
          const now = follow.generation();
          if (next >= now) {
            fd = fs.openSync(file, 'r');
            gen = now;
            pos = 0;
            break;
          }
          const name = `${file}.${now - next}`;
          let rotated: number | undefined;
          let gz = false;
          try {
            rotated = fs.openSync(name, 'r');
          } catch {
            try {
              rotated = fs.openSync(`${name}.gz`, 'r');
              gz = true;
            } catch {} // already removed (max-file): nothing to read
          }
          if (rotated === undefined) continue;
          try {
            await readWhole(rotated, gz, reader, out, buf, abort);
          } finally {
            fs.closeSync(rotated);
          }
        }
        if (fd < 0) return;
        continue;
      }
      if (wasStopped) return;
      await Promise.race([follow.changed(v), follow.stopped, aborted]);
    }
  } finally {
    if (fd >= 0 && fd !== firstFd) fs.closeSync(fd);
  }
}
