/** Repository names, tags and references as the OCI Distribution Spec defines them. */
import { RegistryError } from './errors.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
export const MAX_NAME_LENGTH = 255;

export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function checkName(name: string): void {
  if (!isValidName(name)) {
    throw new RegistryError('NAME_INVALID', 'invalid repository name', { name });
  }
}

export function isTag(ref: string): boolean {
  return TAG_RE.test(ref);
}

export function isDigestRef(ref: string): boolean {
  return DIGEST_RE.test(ref);
}

/** A digest we can serve: sha256 or sha512 with the right length, lowercase hex. */
export function checkDigest(d: string): void {
  if (!DIGEST_RE.test(d)) throw new RegistryError('DIGEST_INVALID', `invalid digest: ${d}`, { digest: d });
}

export function digestAlgorithm(d: string): 'sha256' | 'sha512' {
  return d.startsWith('sha512:') ? 'sha512' : 'sha256';
}
