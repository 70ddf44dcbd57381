/** Request parsing and response writing shared by every route. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Filters } from '../model/filters.js';
import { invalid } from '../util/errors.js';
import type { Ctx } from './context.js';

export const MAX_JSON_BODY = 16 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_JSON_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw invalid(`request body too large (limit ${limit} bytes)`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON body; an empty body yields `fallback`. Malformed JSON is a 400. */
export async function readJson<T>(ctx: Ctx, fallback?: T): Promise<T> {
  const body = await readBody(ctx.req);
  const text = body.toString('utf8').trim();
  if (text === '' || text === 'null') {
    if (fallback !== undefined) return fallback;
    throw invalid('request body is empty');
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw invalid(`invalid JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendStatus(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

/** `res` for ordinary routes; a handler reached through an upgrade request gets a 400. */
export function resOf(ctx: Ctx): ServerResponse {
  if (!ctx.res) throw invalid('this endpoint does not support connection upgrade');
  return ctx.res;
}

export function json(ctx: Ctx, status: number, value: unknown): void {
  sendJson(resOf(ctx), status, value);
}

export function noContent(ctx: Ctx, status = 204): void {
  sendStatus(resOf(ctx), status);
}

/** Docker booleans in query strings: `1`, `true`, `True` are true; absent is `def`. */
export function qBool(q: URLSearchParams, key: string, def = false): boolean {
  const v = q.get(key);
  if (v === null || v === '') return def;
  return !['0', 'false', 'False', 'FALSE', 'no'].includes(v);
}

export function qInt(q: URLSearchParams, key: string): number | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw invalid(`invalid value for ${key}: ${v}`);
  return n;
}

/**
 * Docker filters arrive as JSON maps `{"name":{"web":true}}`; docker-py and dockerode also send
 * the legacy list form `{"name":["web"]}`. Both become `name → [values]`.
 */
export function parseFilters(raw: string | null): Filters {
  const out: Filters = new Map();
  if (!raw) return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalid(`invalid filter: ${raw}`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalid(`invalid filter: ${raw}`);
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(v)) out.set(k, v.map(String));
    else if (typeof v === 'object' && v !== null)
      out.set(
        k,
        Object.entries(v)
          .filter(([, on]) => on)
          .map(([val]) => val),
      );
    else throw invalid(`invalid filter: ${raw}`);
  }
  return out;
}

/** Rejects filter keys a list endpoint does not know, worded as Docker does. */
export function checkFilterKeys(filters: Filters, allowed: string[]): void {
  for (const k of filters.keys()) if (!allowed.includes(k)) throw invalid(`invalid filter '${k}'`);
}

/** Decodes `X-Registry-Auth` (base64url or standard base64 JSON); `{}` when absent or empty. */
export function registryAuth(req: IncomingMessage): Record<string, string> {
  const raw = req.headers['x-registry-auth'];
  if (typeof raw !== 'string' || raw === '') return {};
  try {
    const text = Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}
