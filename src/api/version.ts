/** The API versions berthd speaks and the one comparison every version check uses. */
import { readFileSync } from 'node:fs';

export const API_VERSION = '1.50';
export const MIN_API_VERSION = '1.24';
/** Berth's own version (package.json, one level above src/ and dist/), as Podman reports its own: not Docker's. */
export const ENGINE_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

/** Compares API versions like `1.41`: negative, zero or positive as `a` is older, equal or newer. */
export function compareApiVersions(a: string, b: string): number {
  const [a1, a2] = a.split('.').map(Number);
  const [b1, b2] = b.split('.').map(Number);
  return a1 !== b1 ? a1 - b1 : a2 - b2;
}

export function versionAtLeast(v: string, min: string): boolean {
  return compareApiVersions(v, min) >= 0;
}
