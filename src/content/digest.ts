import { invalid } from '../util/errors.js';

const HEX_LEN = { sha256: 64, sha512: 128 } as const;
export type Algorithm = keyof typeof HEX_LEN;

/** Splits and validates `alg:hex`; throws an `invalid` error for anything else. */
export function parseDigest(digest: string): { algorithm: Algorithm; hex: string } {
  const m = /^(sha256|sha512):([0-9a-f]+)$/.exec(digest);
  if (!m || m[2].length !== HEX_LEN[m[1] as Algorithm]) throw invalid(`invalid digest: ${digest}`);
  return { algorithm: m[1] as Algorithm, hex: m[2] };
}

export function isDigest(s: string): boolean {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}
