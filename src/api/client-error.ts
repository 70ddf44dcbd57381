/**
 * Malformed HTTP (a bad request line, headers too large, a broken chunk) never reaches a handler:
 * Node reports it as a `clientError`. Answer it as Node's default handler and Go's net/http do,
 * 400 or 431, before closing, so a client sees why instead of a dropped connection.
 */
import type { Duplex } from 'node:stream';

export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code !== 'ECONNRESET' && socket.writable) {
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    // A response may already be under way on a kept-alive connection: then only close it.
    const busy = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (!busy) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
  socket.destroy();
}
