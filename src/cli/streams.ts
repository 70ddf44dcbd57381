/**
 * The CLI side of a hijacked attach/exec connection (docker's hijackedIOStreamer): stdin → socket
 * (raw mode and detach keys on a terminal; half-close at EOF), socket → stdout/stderr (raw for TTY,
 * demultiplexed otherwise); plus terminal resize and signal forwarding.
 */
import { spawnSync } from 'node:child_process';
import type { Duplex } from 'node:stream';
import type { EngineClient } from '../client/client.js';
import { Demuxer } from '../client/demux.js';

/** `ctrl-p,ctrl-q` → bytes. */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const key of spec.split(',')) {
    const k = key.trim();
    if (k.length === 1) out.push(k.charCodeAt(0));
    else if (/^ctrl-[a-z@[\\\]^_]$/i.test(k)) {
      const c = k[5]!.toLowerCase();
      if (c >= 'a' && c <= 'z') out.push(c.charCodeAt(0) - 96);
      else out.push({ '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 }[c]!);
    } else throw new Error(`Unknown character: '${k}'`);
  }
  return Buffer.from(out);
}

export interface StreamOptions {
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  detachKeys?: string;
}

export type StreamEnd = 'eof' | 'detached';

/** Pumps the streams until the daemon closes its side (or the user detaches). */
export function streamHijacked(socket: Duplex, head: Buffer, o: StreamOptions): Promise<StreamEnd> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    let rawSet = false;
    let done = false;
    const restore = () => {
      if (rawSet && stdin.isTTY) {
        stdin.setRawMode(false);
        spawnSync('stty', ['opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
      }
      rawSet = false;
    };
    const finish = (how: StreamEnd) => {
      if (done) return;
      done = true;
      restore();
      if (o.stdin) {
        stdin.removeListener('data', onStdin);
        stdin.pause();
      }
      resolve(how);
    };

    // output
    const writeOut = (b: Buffer) => {
      if (o.stdout) process.stdout.write(b);
    };
    const writeErr = (b: Buffer) => {
      if (o.stderr) (o.tty ? process.stdout : process.stderr).write(b);
    };
    const demux = o.tty ? undefined : new Demuxer((t, p) => (t === 2 ? writeErr(p) : writeOut(p)));
    const onData = (b: Buffer) => {
      if (demux) demux.push(b);
      else writeOut(b);
    };
    if (head.length) onData(head);
    socket.on('data', onData);
    socket.on('end', () => {
      // Let stdout drain before reporting the end.
      if (process.stdout.writableNeedDrain) process.stdout.once('drain', () => finish('eof'));
      else finish('eof');
    });
    socket.on('close', () => finish('eof'));
    socket.on('error', (err) => {
      if (done) return;
      restore();
      if (
        (err as NodeJS.ErrnoException).code === 'ECONNRESET' ||
        (err as NodeJS.ErrnoException).code === 'EPIPE'
      )
        finish('eof');
      else reject(err);
    });

    // input
    const keys = o.tty ? parseDetachKeys(o.detachKeys || 'ctrl-p,ctrl-q') : Buffer.alloc(0);
    let held: number[] = [];
    function onStdin(chunk: Buffer) {
      if (!keys.length) {
        socket.write(chunk);
        return;
      }
      // escape proxy: hold bytes that may start the detach sequence
      const out: number[] = [];
      for (const byte of chunk) {
        if (byte === keys[held.length]) {
          held.push(byte);
          if (held.length === keys.length) {
            if (out.length) socket.write(Buffer.from(out));
            socket.destroy();
            finish('detached');
            return;
          }
          continue;
        }
        if (held.length) {
          out.push(...held);
          held = [];
        }
        if (byte === keys[0]) held.push(byte);
        else out.push(byte);
      }
      if (out.length) socket.write(Buffer.from(out));
    }
    if (o.stdin) {
      if (o.tty && stdin.isTTY) {
        stdin.setRawMode(true);
        // Node's raw mode keeps output processing (\n → \r\n); docker's does not, and the
        // container's own terminal already did that translation.
        spawnSync('stty', ['-opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
        rawSet = true;
      }
      stdin.on('data', onStdin);
      stdin.on('end', () => {
        if (!done) socket.end(); // half-close: stdin ended, keep reading output
      });
      stdin.resume();
    } else socket.end();
  });
}

/** Sends the terminal size now and on every SIGWINCH; `path` is `/containers/x` or `/exec/x`. */
export function monitorTtySize(client: EngineClient, path: string): () => void {
  const send = () => {
    const cols = process.stdout.columns;
    const rows = process.stdout.rows;
    if (!cols || !rows) return;
    client.status('POST', `${path}/resize`, { query: { h: rows, w: cols } }).catch(() => {});
  };
  send();
  process.on('SIGWINCH', send);
  return () => process.removeListener('SIGWINCH', send);
}

const FORWARDED: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGALRM',
];

/** Forwards the CLI's signals to the container (`POST /containers/{id}/kill?signal=NAME`). */
export function forwardSignals(client: EngineClient, id: string): () => void {
  let count = 0;
  const handler = (sig: NodeJS.Signals) => {
    count++;
    if (count >= 3 && (sig === 'SIGINT' || sig === 'SIGTERM')) {
      process.stderr.write(`got 3 ${sig}/SIGINTs, forcefully exiting\n`);
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    }
    client.status('POST', `/containers/${id}/kill`, { query: { signal: sig.slice(3) } }).catch(() => {});
  };
  for (const s of FORWARDED) process.on(s, handler);
  return () => {
    for (const s of FORWARDED) process.removeListener(s, handler);
  };
}

/** The terminal size for `ConsoleSize` in create/exec bodies (rows, cols). */
export function consoleSize(): { rows: number; cols: number } | undefined {
  if (!process.stdout.isTTY) return undefined;
  return { rows: process.stdout.rows ?? 0, cols: process.stdout.columns ?? 0 };
}
