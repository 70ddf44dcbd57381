/** Docker's default capability set and the rules for --cap-add/--cap-drop/--privileged. */
import { readFileSync } from 'node:fs';
import { invalid } from '../../util/errors.js';

export const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Capability names by bit number (linux/capability.h). */
const ALL_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

let bounding: string[] | undefined;

/**
 * The capabilities this daemon holds (its bounding set). A spec may ask for no more: crun fails
 * with `capset: Operation not permitted` otherwise (this machine lacks CAP_SYS_RESOURCE).
 */
export function daemonBoundingSet(): string[] {
  if (bounding) return bounding;
  const m = /CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  const mask = m ? BigInt(`0x${m[1]}`) : 0n;
  bounding = ALL_CAPS.filter((_c, i) => (mask >> BigInt(i)) & 1n);
  return bounding;
}

export function normalizeCap(name: string): string {
  const up = name.toUpperCase();
  if (up === 'ALL') return 'ALL';
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!ALL_CAPS.includes(full)) throw invalid(`invalid capability: ${name}`);
  return full;
}

/** Docker's order of operations: drop ALL first, then add, then drop specific ones. */
export function effectiveCaps(add: string[] = [], drop: string[] = [], privileged = false): string[] {
  const held = daemonBoundingSet();
  if (privileged) return held;
  const adds = add.map(normalizeCap);
  const drops = drop.map(normalizeCap);
  let caps = drops.includes('ALL') ? [] : [...DEFAULT_CAPS];
  if (adds.includes('ALL')) caps = [...ALL_CAPS];
  else for (const c of adds) if (!caps.includes(c)) caps.push(c);
  caps = caps.filter((c) => !drops.includes(c));
  return caps.filter((c) => held.includes(c));
}
