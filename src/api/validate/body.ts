/** Reading a JSON request body that must decode into one of the Engine API's Go types. */
import { invalid } from '../../util/errors.js';
import type { Ctx } from '../context.js';
import { readJson } from '../http.js';
import { decodeGoJson, type GoType } from './go-json.js';

/** As readJson, then refused with a 400 unless the value has the shape of `type` (see decodeGoJson). */
export async function readTyped<T>(ctx: Ctx, type: GoType, fallback?: T): Promise<T> {
  return decodeGoJson<T>(await readJson<T>(ctx, fallback), type);
}

/** The same check for a body already parsed (the exec start body read from an upgraded socket). */
export function parseTyped<T>(text: string, type: GoType, fallback: T): T {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'null') return fallback;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (err) {
    throw invalid(`invalid JSON: ${(err as Error).message}`);
  }
  return decodeGoJson<T>(value, type);
}
