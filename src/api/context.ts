import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Backend } from './backend.js';

/** What a handler gets: the parsed request and the engine services it may call. */
export interface Ctx {
  req: IncomingMessage;
  /** Absent when the client asked for a connection upgrade (attach, exec start). */
  res?: ServerResponse;
  /** Present for upgrade requests: the raw socket and bytes already read past the headers. */
  upgrade?: { socket: Duplex; head: Buffer };
  params: Record<string, string>;
  query: URLSearchParams;
  /** The API version the client spoke (path prefix), or the daemon's own. */
  version: string;
  services: Backend;
}

export type Handler = (ctx: Ctx) => Promise<void> | void;
