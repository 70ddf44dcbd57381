/** Wire formats of Docker's streams: multiplexed frames, JSON progress lines, and hijacked sockets. */
import type { ServerResponse } from 'node:http';
import type { Duplex, Writable } from 'node:stream';
import type { Ctx } from './context.js';
import { versionAtLeast } from './context.js';

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;

/** One frame of the multiplexed stream: `[type,0,0,0,size(be32)]` + payload. */
export function frame(stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** A JSON-message stream (pull, push, load, import, build): one object per line. */
export class JsonMessageStream {
  constructor(private readonly out: Writable) {}
  static start(res: ServerResponse): JsonMessageStream {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return new JsonMessageStream(res);
  }
  send(msg: Record<string, unknown>): void {
    this.out.write(JSON.stringify(msg) + '\n');
  }
  status(status: string, id?: string): void {
    this.send(id ? { status, id } : { status });
  }
  stream(text: string): void {
    this.send({ stream: text });
  }
  error(message: string, code?: number): void {
    this.send({ errorDetail: code === undefined ? { message } : { code, message }, error: message });
  }
  end(): void {
    this.out.end();
  }
}

/**
 * Takes over the connection for attach/exec: `101 UPGRADED` when the client asked for an upgrade
 * (docker CLI ≥ 1.x requires it), otherwise `200 OK` and a raw stream on the same socket.
 * Returns the socket plus bytes that already arrived after the headers.
 * The socket stays half-open: the client's FIN means "stdin ended", not "stop writing".
 */
export function hijack(ctx: Ctx, multiplexed: boolean): { socket: Duplex; head: Buffer } {
  const contentType =
    multiplexed && versionAtLeast(ctx.version, '1.42')
      ? 'application/vnd.docker.multiplexed-stream'
      : 'application/vnd.docker.raw-stream';
  if (ctx.upgrade) {
    const { socket, head } = ctx.upgrade;
    const proto = String(ctx.req.headers.upgrade ?? 'tcp');
    socket.write(
      `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: ${proto}\r\n\r\n`,
    );
    return { socket, head };
  }
  // No upgrade asked for: answer 200 and stream raw on the same connection, as moby does.
  const res = ctx.res!;
  const socket = ctx.req.socket;
  res.detachSocket(socket);
  const parser = (socket as unknown as { parser?: { unconsume?: () => void } | null }).parser;
  parser?.unconsume?.();
  (socket as unknown as { parser: unknown }).parser = null;
  for (const ev of ['data', 'end', 'error', 'close', 'drain', 'timeout']) socket.removeAllListeners(ev);
  socket.setTimeout(0);
  socket.write(`HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\n\r\n`);
  return { socket, head: Buffer.alloc(0) };
}
