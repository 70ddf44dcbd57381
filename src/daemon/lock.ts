/**
 * One berthd per data root. Node 20 has no flock, so the lock is a listening abstract unix socket
 * named after the data root: the kernel releases it when the process dies, even by SIGKILL.
 */
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { conflict } from '../util/errors.js';

export async function lockDataRoot(dataRoot: string): Promise<net.Server> {
  const name = `\0berthd-${createHash('sha256').update(dataRoot).digest('hex').slice(0, 32)}`;
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? conflict(`data root ${dataRoot} is in use by another berthd`) : err),
    );
    server.listen(name, () => resolve());
  });
  server.unref();
  return server;
}
