/** The API versions berthd speaks and the one comparison every version check uses. */
export const API_VERSION = '1.50';
export const MIN_API_VERSION = '1.24';
export const ENGINE_VERSION = '28.2.2';

/** Compares API versions like `1.41`: negative, zero or positive as `a` is older, equal or newer. */
export function compareApiVersions(a: string, b: string): number {
  const [a1, a2] = a.split('.').map(Number);
  const [b1, b2] = b.split('.').map(Number);
  return a1 !== b1 ? a1 - b1 : a2 - b2;
}

export function versionAtLeast(v: string, min: string): boolean {
  return compareApiVersions(v, min) >= 0;
}
