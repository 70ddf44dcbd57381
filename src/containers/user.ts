/** Resolves `User` inside the container's rootfs, as Docker does (`util/passwd.ts`). */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { type ResolvedUser, resolveUserIn } from '../util/passwd.js';

function readEtc(rootfs: string, file: string): string {
  try {
    return readFileSync(path.join(rootfs, 'etc', file), 'utf8');
  } catch {
    return '';
  }
}

export function resolveUser(rootfs: string, user: string): ResolvedUser {
  return resolveUserIn(user, readEtc(rootfs, 'passwd'), readEtc(rootfs, 'group'));
}
