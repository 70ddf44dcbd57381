/**
 * Turns the container monitor's output file into Docker's json-file log.
 *
 * conmon (Debian's 2.1.6) can only write its own `k8s-file` format, so it keeps writing that to
 * `monitor.log` in the container's directory: that file is the container's output buffer, filled
 * whether berthd runs or not. berthd appends what it has not yet converted to `<id>-json.log`,
 * rotating as dockerd rotates, and records how far it got in `log-position.json` (conmon's file
 * inode and offset, the json file's inode and size, and any partial line still waiting for its
 * end), so that after a restart it resumes exactly there: nothing written while berthd was down
 * is lost, nothing converted twice. The position is saved at most every half second (a rename per
 * batch cost more than the conversion), at each rotation and when following stops; after a crash
 * the json file is cut back to the saved size and that stretch converted again (only a crash
 * between a rotation and its save can repeat entries).
 * The converted part of conmon's file is punched out (fallocate) so that it does not hold the
 * disk twice. See docs/logs.md for the measurements behind this choice.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { errnoCode } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { entrySuffix, goTime, maxEntryBytes, writeEntry } from './json-format.js';
import type { Rotation } from './options.js';

/** Docker's copier buffer: a line longer than this is split into partial entries of this size. */
export const LINE_LIMIT = 16 * 1024;
const READ_SIZE = 256 * 1024;
const OUT_SIZE = 1024 * 1024;
const PUNCH_EVERY = 8 * 1024 * 1024;
/**
 * While following, conversion runs at most this often: conmon writes up to 8 KiB at a time and
 * each write wakes the watcher; batching them keeps berthd's event loop (attach runs on it too)
 * from doing a small step per write. `logs` and the container's exit convert at once.
 */
const FOLLOW_DELAY_MS = 30;
/**
 * While a client is attached, live output goes first: conversion runs at most once a second (the
 * output is safe in conmon's file meanwhile), so that the two do not compete for the CPU during
 * the run. Measured: `docker run` of 588k lines took ≈ 1.6× as long with conversion every 30 ms.
 */
const ATTACHED_DELAY_MS = 1000;
/**
 * One input and one output buffer for all recorders: a step (read, convert, write) runs without
 * yielding, so they are never shared at the same time, and a running container costs no
 * megabytes of its own.
 */
const IN = Buffer.allocUnsafe(READ_SIZE * 2);
const OUT = Buffer.allocUnsafe(OUT_SIZE);

export interface RecorderPaths {
  /** conmon's k8s-file output. */
  monitor: string;
  /** Docker's `<id>-json.log`. */
  json: string;
  /** Durable progress. */
  position: string;
}

interface Position {
  monIno: number;
  offset: number;
  jsonIno: number;
  jsonSize: number;
  /** Partial lines not yet ended, per stream: base64 bytes and the time of their first piece. */
  pending: { data: string; time: string }[];
}

interface Pending {
  buf: Buffer;
  len: number;
  time: string;
}

export class JsonFileRecorder {
  private pos: Position = { monIno: 0, offset: 0, jsonIno: 0, jsonSize: 0, pending: [] };
  private readonly pending: (Pending | undefined)[] = [undefined, undefined];
  private inFd?: number;
  private outFd?: number;
  private outSize = 0;
  private outPos = 0;
  /** The start of a line whose end is not read yet. */
  private carry: Buffer = Buffer.alloc(0);
  private running?: Promise<void>;
  private again = false;
  private watcher?: fs.FSWatcher;
  private punched = 0;
  private compressJob?: { cancelled: boolean };
  private closed = false;
  private followTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  private following = false;
  private attachedClients = 0;
  /** Rotations done by this recorder (followers find the files after theirs by it). */
  rotations = 0;
  private saveTimer?: NodeJS.Timeout;
  /** The conmon offset last made durable: only what is before it may be punched out. */
  private savedOffset = 0;
  private lastTsKey = '';
  private lastUtc = '';
  /** conmon's last time stamp as read, its Docker form, and the entry endings made from it. */
  private readonly lastTs = Buffer.alloc(64);
  private lastTsLen = 0;
  private curTime = '';
  private suffixes: Buffer[] = [];

  constructor(
    private readonly paths: RecorderPaths,
    private readonly rotation: Rotation,
    /** Called after each batch reaches the json file (wakes `logs -f` readers). */
    private readonly onWrite: () => void,
    /** dockerd's `attrs` object for every line (labels, env, tag options), if any. */
    private readonly attrs?: string,
  ) {}

  /** Loads the durable position and opens the json file, undoing a batch a crash left unrecorded. */
  open(): void {
    try {
      this.pos = JSON.parse(fs.readFileSync(this.paths.position, 'utf8')) as Position;
    } catch {}
    for (let i = 0; i < 2; i++) {
      const p = this.pos.pending?.[i];
      if (p?.data) {
        const data = Buffer.from(p.data, 'base64');
        const buf = Buffer.allocUnsafe(LINE_LIMIT);
        data.copy(buf);
        this.pending[i] = { buf, len: Math.min(data.length, LINE_LIMIT), time: p.time };
      }
    }
    this.outFd = fs.openSync(this.paths.json, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o640);
    const st = fs.fstatSync(this.outFd);
    this.outSize = st.size;
    if (st.ino === this.pos.jsonIno && st.size > this.pos.jsonSize) {
      fs.ftruncateSync(this.outFd, this.pos.jsonSize);
      this.outSize = this.pos.jsonSize;
    }
    this.pos.jsonIno = st.ino;
    this.pos.jsonSize = this.outSize;
    this.savedOffset = this.pos.offset;
    // A compression that a restart interrupted.
    const dir = path.dirname(this.paths.json);
    for (const n of fs.readdirSync(dir)) if (/\.gz\.(partial-\d+|sync)$/.test(n)) fs.rmSync(path.join(dir, n), { force: true });
    if (this.rotation.compress && fs.existsSync(`${this.paths.json}.1`)) this.startCompress();
  }

  /** Follows conmon's file as it grows (the container runs). */
  follow(): void {
    if (this.following || this.closed) return;
    this.following = true;
    this.arm();
    void this.sync();
  }

  /**
   * How new output wakes the conversion: a one-shot inotify watch on conmon's file (the first
   * write after a conversion wakes it, FOLLOW_DELAY_MS later; the writes in between wake nothing:
   * a JS callback per conmon write cost more than the conversion), or, while a client is
   * attached, a poll every ATTACHED_DELAY_MS.
   */
  private arm(): void {
    this.disarm();
    if (!this.following || this.closed) return;
    if (this.attachedClients > 0 || !this.watchFile()) this.pollTimer = setInterval(() => void this.sync(), this.attachedClients > 0 ? ATTACHED_DELAY_MS : 250);
  }

  private watchFile(): boolean {
    try {
      this.watcher = fs.watch(this.paths.monitor, () => this.soon());
      this.watcher.on('error', () => {});
      return true;
    } catch (err) {
      log.warn('cannot watch the container output; polling it', { file: this.paths.monitor, err });
      return false;
    }
  }

  private disarm(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    if (this.followTimer) clearTimeout(this.followTimer);
    this.followTimer = undefined;
  }

  private soon(): void {
    if (this.followTimer || this.closed) return;
    this.watcher?.close();
    this.watcher = undefined;
    this.followTimer = setTimeout(() => {
      this.followTimer = undefined;
      // Watch again before converting: a write after the conversion's last read wakes it.
      if (this.following && this.attachedClients === 0 && !this.watcher) this.arm();
      void this.sync();
    }, FOLLOW_DELAY_MS);
  }

  /** A client attached to the container's output (until `detached`). */
  attached(): void {
    if (++this.attachedClients === 1) this.arm();
  }

  detached(): void {
    if (this.attachedClients === 0) return;
    if (--this.attachedClients === 0 && this.following) {
      this.arm();
      void this.sync();
    }
  }

  /** Converts everything conmon has written so far; resolves when it is in the json file. */
  sync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      // The loop may be past its last read: one more pass after it covers what came since.
      this.again = true;
      return this.running.then(() => this.sync());
    }
    this.running = this.loop().finally(() => (this.running = undefined));
    return this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        while (!this.closed && this.step()) await new Promise((r) => setImmediate(r));
      } catch (err) {
        log.error('cannot record container output', { file: this.paths.json, err });
        return;
      }
    } while (this.again && !this.closed);
    this.saveSoon();
  }

  private saveSoon(): void {
    if (this.saveTimer || this.closed) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      if (!this.closed) this.savePosition();
    }, 500);
    this.saveTimer.unref();
  }

  /**
   * The container's run ended: convert the rest, write a last line without newline as Docker
   * does at EOF, and start the next run's conmon file afresh.
   */
  async exited(): Promise<void> {
    this.stopWatching();
    await this.sync();
    if (this.closed) return;
    for (let i = 0; i < 2; i++) {
      const p = this.pending[i];
      if (p && p.len > 0) this.entry(i, p.buf, 0, p.len, false, p.time);
      this.pending[i] = undefined;
    }
    this.flushOut();
    if (this.inFd !== undefined) fs.closeSync(this.inFd);
    this.inFd = undefined;
    this.carry = Buffer.alloc(0);
    fs.rmSync(this.paths.monitor, { force: true });
    this.pos.monIno = 0;
    this.pos.offset = 0;
    this.punched = 0;
    this.savePosition();
    this.onWrite();
  }

  /** berthd stops or the container goes: stop following; the position is already durable. */
  close(): void {
    if (this.closed) return;
    if (this.outFd !== undefined) this.savePosition();
    this.closed = true;
    this.stopWatching();
    if (this.inFd !== undefined) fs.closeSync(this.inFd);
    if (this.outFd !== undefined) fs.closeSync(this.outFd);
    this.inFd = this.outFd = undefined;
    if (this.compressJob) this.compressJob.cancelled = true;
  }

  /** Stops following conmon's file (what is left is converted by the next sync or exited). */
  stopWatching(): void {
    this.following = false;
    this.disarm();
  }

  /** One read of conmon's file, converted and appended; false at its end. */
  private step(): boolean {
    if (this.inFd === undefined) {
      try {
        this.inFd = fs.openSync(this.paths.monitor, fs.constants.O_RDONLY);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return false;
        throw err;
      }
      const ino = fs.fstatSync(this.inFd).ino;
      if (ino !== this.pos.monIno) {
        this.pos.monIno = ino;
        this.pos.offset = 0;
        this.punched = 0;
      }
      this.carry = Buffer.alloc(0);
    }
    const carried = this.carry.copy(IN, 0);
    const n = fs.readSync(this.inFd, IN, carried, IN.length - carried, this.pos.offset + carried);
    if (n === 0) return false;
    const end = carried + n;
    const data = IN.subarray(0, end);
    let p = 0;
    for (;;) {
      const nl = data.indexOf(10, p);
      if (nl < 0 || nl >= end) break;
      this.line(data, p, nl);
      p = nl + 1;
    }
    if (p === 0 && end === IN.length) p = end; // a full buffer without a newline: not conmon's format, skip it
    this.carry = Buffer.from(data.subarray(p, end));
    this.pos.offset += p;
    this.flushOut();
    this.punch();
    this.onWrite();
    return true;
  }

  /** One conmon line: `<time> <stdout|stderr> <F|P> <bytes>`; anything else is skipped. */
  private line(b: Buffer, s: number, e: number): void {
    // Most lines carry the same time stamp as the one before: no search for its end then.
    const sp1 = this.lastTsLen > 0 && b[s + this.lastTsLen] === 32 ? s + this.lastTsLen : b.indexOf(32, s);
    if (sp1 < 0 || sp1 + 9 > e || b[sp1 + 7] !== 32 || (sp1 + 9 < e && b[sp1 + 9] !== 32)) return;
    const stream = b[sp1 + 4] === 0x6f ? 0 : b[sp1 + 4] === 0x65 ? 1 : -1;
    if (stream < 0) return;
    const full = b[sp1 + 8] === 0x46; // F; P is a partial piece
    const tsLen = sp1 - s;
    if (!this.sameTs(b, s, tsLen)) {
      const t = tsLen <= this.lastTs.length ? this.time(b.toString('latin1', s, sp1)) : undefined;
      if (!t) return;
      b.copy(this.lastTs, 0, s, sp1);
      this.lastTsLen = tsLen;
      this.curTime = t;
      this.suffixes = [];
    }
    const time = this.curTime;
    const cs = Math.min(sp1 + 10, e);
    const pend = this.pending[stream];
    if (full && !pend) {
      this.whole(stream, b, cs, e, time);
      return;
    }
    const p = pend ?? { buf: Buffer.allocUnsafe(LINE_LIMIT), len: 0, time };
    this.pending[stream] = p;
    let i = cs;
    while (i < e) {
      const take = Math.min(e - i, LINE_LIMIT - p.len);
      b.copy(p.buf, p.len, i, i + take);
      p.len += take;
      i += take;
      if (p.len === LINE_LIMIT) {
        this.entry(stream, p.buf, 0, LINE_LIMIT, false, p.time);
        p.len = 0;
      }
    }
    if (full) {
      this.entry(stream, p.buf, 0, p.len, true, p.time);
      this.pending[stream] = undefined;
    }
  }

  /** Whether conmon's time stamp at b[s…] is the last one seen (compared from its end, where they differ). */
  private sameTs(b: Buffer, s: number, len: number): boolean {
    if (len !== this.lastTsLen) return false;
    const last = this.lastTs;
    for (let k = len - 1; k >= 0; k--) if (b[s + k] !== last[k]) return false;
    return true;
  }

  /** A whole line, in Docker's 16 KiB pieces when longer. */
  private whole(stream: number, b: Buffer, s: number, e: number, time: string): void {
    while (e - s >= LINE_LIMIT) {
      this.entry(stream, b, s, s + LINE_LIMIT, false, time);
      s += LINE_LIMIT;
    }
    this.entry(stream, b, s, e, true, time);
  }

  /** The entry ending for a stream, newline and time; cached for the current time stamp. */
  private suffix(stream: number, newline: boolean, time: string): Buffer {
    if (time !== this.curTime) return entrySuffix(stream === 1, time, newline, this.attrs);
    const k = stream * 2 + (newline ? 1 : 0);
    let sfx = this.suffixes[k];
    if (!sfx) {
      sfx = entrySuffix(stream === 1, time, newline, this.attrs);
      this.suffixes[k] = sfx;
    }
    return sfx;
  }

  private entry(stream: number, b: Buffer, s: number, e: number, newline: boolean, time: string): void {
    const sfx = this.suffix(stream, newline, time);
    const need = maxEntryBytes(e - s, sfx);
    if (this.outPos + need > OUT_SIZE) this.flushOut();
    // dockerd rotates before a write once the file has reached max-size.
    if (this.rotation.maxSize !== undefined && this.outSize + this.outPos >= this.rotation.maxSize) {
      this.flushOut();
      this.rotate();
    }
    this.outPos = writeEntry(OUT, this.outPos, b, s, e, sfx);
  }

  /** conmon's RFC 3339 time (its zone) → Docker's (UTC, Z, trimmed fraction). */
  private time(ts: string): string | undefined {
    if (ts.length < 20 || ts.charCodeAt(4) !== 0x2d || ts.charCodeAt(10) !== 0x54) return undefined;
    const z = ts.charCodeAt(ts.length - 1) === 0x5a ? ts.length - 1 : ts.length - 6;
    const dot = ts.charCodeAt(19) === 0x2e ? 19 : -1;
    const frac = dot < 0 ? '' : ts.slice(20, z);
    const key = ts.slice(0, 19) + ts.slice(z);
    if (key !== this.lastTsKey) {
      const zone = ts.slice(z);
      let utc = ts.slice(0, 19);
      if (zone !== 'Z' && zone !== '+00:00' && zone !== '-00:00') {
        const ms = Date.parse(utc + zone);
        if (Number.isNaN(ms)) return undefined;
        utc = new Date(ms).toISOString().slice(0, 19);
      }
      this.lastTsKey = key;
      this.lastUtc = utc;
    }
    return goTime(this.lastUtc, frac);
  }

  private flushOut(): void {
    if (this.outPos === 0 || this.outFd === undefined) return;
    let off = 0;
    while (off < this.outPos) off += fs.writeSync(this.outFd, OUT, off, this.outPos - off);
    this.outSize += this.outPos;
    this.outPos = 0;
  }

  private savePosition(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    this.pos.jsonSize = this.outSize;
    this.pos.pending = this.pending.map((p) => (p?.len ? { data: p.buf.subarray(0, p.len).toString('base64'), time: p.time } : { data: '', time: '' }));
    const tmp = `${this.paths.position}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.pos));
    fs.renameSync(tmp, this.paths.position);
    this.savedOffset = this.pos.offset;
  }

  /** Frees the disk blocks of what is converted (the file keeps its size: conmon appends). */
  private punch(): void {
    const upTo = Math.floor(this.savedOffset / 4096) * 4096;
    if (upTo - this.punched < PUNCH_EVERY) return;
    const from = this.punched;
    this.punched = upTo;
    execFile('fallocate', ['--punch-hole', '--offset', String(from), '--length', String(upTo - from), this.paths.monitor], (err) => {
      if (err && !punchWarned) {
        punchWarned = true;
        log.warn('cannot free converted container output (fallocate --punch-hole)', { err: err.message });
      }
    });
  }

  /** dockerd's rotation: `.1` … `.N-1` (gzipped with compress), or a fresh file when max-file is 1. */
  private rotate(): void {
    const { maxFiles, compress } = this.rotation;
    const base = this.paths.json;
    if (this.outFd !== undefined) fs.closeSync(this.outFd);
    if (maxFiles < 2) {
      fs.rmSync(base, { force: true });
    } else {
      // A compression still running must finish first: `.1` is about to be replaced.
      if (compress && this.compressJob) {
        this.compressJob.cancelled = true;
        this.compressJob = undefined;
        compressNow(`${base}.1`);
      }
      const ext = compress ? '.gz' : '';
      fs.rmSync(`${base}.${maxFiles - 1}${ext}`, { force: true });
      for (let i = maxFiles - 1; i > 1; i--) renameIfThere(`${base}.${i - 1}${ext}`, `${base}.${i}${ext}`);
      renameIfThere(base, `${base}.1`);
    }
    this.outFd = fs.openSync(base, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o640);
    this.outSize = 0;
    this.rotations++;
    this.pos.jsonIno = fs.fstatSync(this.outFd).ino;
    this.savePosition();
    if (maxFiles >= 2 && compress) this.startCompress();
  }

  /** Gzips `.1` in the background; the swap to `.1.gz` is one synchronous step (readers see either). */
  private startCompress(): void {
    const src = `${this.paths.json}.1`;
    const job = { cancelled: false };
    this.compressJob = job;
    const tmp = `${src}.gz.partial-${++compressSeq}`;
    pipeline(fs.createReadStream(src), createGzip(), fs.createWriteStream(tmp, { mode: 0o640 }))
      .then(() => {
        if (job.cancelled) return fs.rmSync(tmp, { force: true });
        fs.renameSync(tmp, `${src}.gz`);
        fs.rmSync(src, { force: true });
      })
      .catch((err) => {
        fs.rmSync(tmp, { force: true });
        if (!job.cancelled) log.warn('cannot compress a rotated log', { file: src, err });
      })
      .finally(() => {
        if (this.compressJob === job) this.compressJob = undefined;
      });
  }
}

let punchWarned = false;
let compressSeq = 0;

function compressNow(src: string): void {
  let data: Buffer;
  try {
    data = fs.readFileSync(src);
  } catch {
    return;
  }
  const tmp = `${src}.gz.sync`;
  fs.writeFileSync(tmp, gzipSync(data), { mode: 0o640 });
  fs.renameSync(tmp, `${src}.gz`);
  fs.rmSync(src, { force: true });
}

function renameIfThere(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}
