/**
 * Bridges a client's hijacked connection and the monitor's attach socket (SOCK_SEQPACKET, each
 * message = 1 stream byte (2 stdout, 3 stderr) + payload). Non-TTY output becomes Docker's
 * multiplexed frames, TTY output stays raw. The client's FIN means "stdin ended": it is passed on
 * as a shutdown of the socket's write side (the monitor then closes the container's stdin unless
 * told to keep it open); output keeps flowing until the container's side closes.
 */
import type { Duplex } from 'node:stream';
import { SeqpacketSocket } from 'node-unix-socket';
import { frame, STDERR, STDOUT } from '../util/stdcopy.js';

const CONMON_STDOUT = 2;
const CONMON_STDERR = 3;
const MAX_STDIN_MESSAGE = 4096;

export interface AttachOptions {
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** The session's side of a monitor connection: its own socket, or its share of one (see `connectShared`). */
interface MonitorLink {
  write(b: Buffer): unknown;
  end(): void;
  destroy(): void;
}

export class AttachSession {
  private seq?: MonitorLink;
  private pendingInput: Buffer[] = [];
  private clientEnded = false;
  private closed = false;
  private readonly closeHandlers: (() => void)[] = [];

  constructor(
    readonly client: Duplex,
    head: Buffer,
    readonly opts: AttachOptions,
  ) {
    if (head.length) this.pendingInput.push(head);
    client.on('data', (b: Buffer) => this.input(b));
    client.on('end', () => {
      this.clientEnded = true;
      if (this.seq && this.opts.stdin) safeEnd(this.seq);
    });
    client.on('close', () => this.close());
    client.on('error', () => this.close());
    // Only now may bytes flow: until the listeners above exist, stdin and FIN must stay buffered.
    client.resume();
  }

  /** Something that must be done before the client sees EOF (e.g. recording an exec's exit code). */
  gate?: Promise<unknown>;

  onClose(fn: () => void): void {
    this.closeHandlers.push(fn);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private input(b: Buffer): void {
    if (!this.opts.stdin) return;
    if (!this.seq) {
      this.pendingInput.push(b);
      return;
    }
    try {
      for (let i = 0; i < b.length; i += MAX_STDIN_MESSAGE) this.seq.write(b.subarray(i, i + MAX_STDIN_MESSAGE));
    } catch {
      // The monitor's side is gone (container exited): stdin has nowhere to go.
    }
  }

  /** Connects to the monitor's attach socket; resolves once connected. */
  connect(socketPath: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const seq = new SeqpacketSocket();
      seq.setInternalReadBufferSize(65536);
      seq.on('data', (b: Buffer) => this.output(b));
      seq.on('end', () => this.finish());
      seq.on('close', () => this.finish());
      seq.on('error', () => {
        this.finish();
        resolve();
      });
      seq.connect(socketPath, () => {
        this.seq = seq;
        const pending = this.pendingInput;
        this.pendingInput = [];
        for (const b of pending) this.input(b);
        if (this.clientEnded && this.opts.stdin) safeEnd(seq);
        resolve();
      });
    });
  }

  /** Joins a connection made for several sessions: input goes through it from now on. */
  useLink(link: MonitorLink): void {
    this.seq = link;
    const pending = this.pendingInput;
    this.pendingInput = [];
    for (const b of pending) this.input(b);
    if (this.clientEnded && this.opts.stdin) link.end();
  }

  /** One message from the monitor (stream byte + payload). */
  deliver(b: Buffer): void {
    this.output(b);
  }

  private output(b: Buffer): void {
    if (this.closed || b.length < 1) return;
    const kind = b[0];
    const payload = b.subarray(1);
    if (kind === CONMON_STDOUT && !this.opts.stdout) return;
    if (kind === CONMON_STDERR && !this.opts.stderr) return;
    if (kind !== CONMON_STDOUT && kind !== CONMON_STDERR) return;
    if (this.opts.tty) this.client.write(payload);
    else this.client.write(frame(kind === CONMON_STDOUT ? STDOUT : STDERR, payload));
  }

  /** The container's side is done: flush and close our write side (the client then reads EOF). */
  finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.seq?.destroy();
    const end = () => {
      this.client.end();
      for (const fn of this.closeHandlers) fn();
    };
    if (!this.gate) {
      end();
      return;
    }
    const timer = setTimeout(end, 5000);
    void this.gate.finally(() => {
      clearTimeout(timer);
      end();
    });
  }

  /** The client went away: drop the monitor connection; the container keeps running. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.seq?.destroy();
    this.client.destroy();
    for (const fn of this.closeHandlers) fn();
  }
}

/**
 * Connects the sessions waiting for a start through ONE monitor connection, fanned out here. conmon
 * sends output only to the attach connections it has accepted by then, and sessions connecting
 * side by side just before the start may be accepted after the first output: `docker-compose run`
 * (one attach per stream) lost its whole output 4 times in 10 that way.
 */
export function connectShared(sessions: AttachSession[], socketPath: string): Promise<void> {
  const open = sessions.filter((s) => !s.isClosed);
  if (open.length <= 1) return open[0]?.connect(socketPath) ?? Promise.resolve();
  return new Promise((resolve) => {
    const seq = new SeqpacketSocket();
    seq.setInternalReadBufferSize(65536);
    const members = new Set(open);
    // Only sessions with stdin end their input; the container's stdin closes when all have.
    let inputs = open.filter((s) => s.opts.stdin).length;
    const done = () => {
      for (const s of [...members]) s.finish();
    };
    seq.on('data', (b: Buffer) => {
      for (const s of members) s.deliver(b);
    });
    seq.on('end', done);
    seq.on('close', done);
    seq.on('error', () => {
      done();
      resolve();
    });
    seq.connect(socketPath, () => {
      for (const s of open)
        s.useLink({
          write: (b) => seq.write(b),
          end: () => {
            if (--inputs <= 0) safeEnd(seq);
          },
          destroy: () => {
            members.delete(s);
            if (members.size === 0) seq.destroy();
          },
        });
      resolve();
    });
  });
}

/** Half-closes the monitor connection; it may already be gone, which is fine. */
function safeEnd(seq: MonitorLink): void {
  try {
    seq.end();
  } catch {}
}
