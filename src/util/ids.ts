import { randomBytes } from 'node:crypto';

/** A 64-hex identifier, as Docker uses for containers, exec sessions and networks. */
export const newId = (): string => randomBytes(32).toString('hex');
export const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);
export const isFullId = (s: string): boolean => /^[0-9a-f]{64}$/.test(s);
