/** Docker's streams on HTTP: JSON progress lines on a response, and hijacked sockets for attach/exec. */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { JsonMessageStream } from '../util/json-message.js';
import type { Ctx } from './context.js';
import { versionAtLeast } from './version.js';

/** Opens a JSON-message stream (pull, push, load, import, build) on a response. */
export function startJsonMessages(res: ServerResponse): JsonMessageStream {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  return new JsonMessageStream(res);
}

/**
 * A JSON-message stream that answers 200 only with its first message: an error before it can
 * still get its own HTTP status, as Docker answers a pull that fails before any progress
 * (Testcontainers and dockerode rely on it). `started` tells which case it is.
 */
export function lazyJsonMessages(res: ServerResponse): JsonMessageStream {
  return new JsonMessageStream(res, () => res.writeHead(200, { 'Content-Type': 'application/json' }));
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
  // No upgrade asked for: answer 200 and stream on the same connection, as moby does.
  const res = ctx.res!;
  const socket = ctx.req.socket;
  res.detachSocket(socket);
  const parser = (socket as unknown as { parser?: { unconsume?: () => void } | null }).parser;
  parser?.unconsume?.();
  (socket as unknown as { parser: unknown }).parser = null;
  for (const ev of ['data', 'end', 'error', 'close', 'drain', 'timeout']) socket.removeAllListeners(ev);
  socket.setTimeout(0);
  // Docker names this answer raw-stream whatever the framing (only the 101 says multiplexed).
  socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n');
  return { socket, head: Buffer.alloc(0) };
}
