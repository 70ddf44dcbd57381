/**
 * Seccomp sections for a container: Docker's default policy (seccomp-default.ts) or a user's
 * profile in Docker's JSON format (`--security-opt seccomp=PROFILE.json`: the docker CLI sends the
 * file's content), converted to the OCI form for the container's capabilities and this host's
 * architecture.
 */
import { goArch } from '../../util/platform.js';
import { readFileSync } from 'node:fs';
import { invalid } from '../../util/errors.js';
import { dockerDefaultSeccomp } from './seccomp-default.js';
import type { OciSeccomp } from './types.js';

interface DockerRule {
  names?: string[];
  name?: string;
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[] | null;
  includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes?: { caps?: string[]; arches?: string[] };
}

interface DockerProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  syscalls: DockerRule[];
}

const NATIVE: Record<string, string> = {
  x64: 'SCMP_ARCH_X86_64',
  arm64: 'SCMP_ARCH_AARCH64',
  s390x: 'SCMP_ARCH_S390X',
  ppc64: 'SCMP_ARCH_PPC64LE',
};

function kernelAtLeast(min: string): boolean {
  const [a, b] = readFileSync('/proc/sys/kernel/osrelease', 'utf8')
    .split('.')
    .map((n) => Number.parseInt(n, 10));
  const [x, y] = min.split('.').map(Number);
  return a > x || (a === x && b >= y);
}

/** Parses a profile in Docker's format (the default one, or a user's `--security-opt seccomp=FILE`). */
export function toOciSeccomp(profile: DockerProfile, caps: string[]): OciSeccomp {
  const native = NATIVE[process.arch];
  const arches = profile.archMap?.find((a) => a.architecture === native);
  const short = goArch();
  const syscalls: OciSeccomp['syscalls'] = [];
  for (const r of profile.syscalls) {
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if (inc.caps && !inc.caps.every((c) => caps.includes(c))) continue;
    if (inc.arches && !inc.arches.includes(short)) continue;
    if (inc.minKernel && !kernelAtLeast(inc.minKernel)) continue;
    if (exc.caps?.some((c) => caps.includes(c))) continue;
    if (exc.arches?.includes(short)) continue;
    const names = r.names ?? (r.name ? [r.name] : []);
    if (names.length === 0) continue;
    syscalls.push({
      names,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args?.length ? { args: r.args } : {}),
    });
  }
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures: arches ? [arches.architecture, ...(arches.subArchitectures ?? [])] : [],
    syscalls,
  };
}

export function defaultSeccomp(caps: string[]): OciSeccomp {
  return dockerDefaultSeccomp(caps);
}

/**
 * A user's profile: the JSON text itself (what the docker CLI sends) or, from older clients, the
 * path of a file on the daemon's host.
 */
export function seccompFromProfile(profile: string, caps: string[]): OciSeccomp {
  const text = profile.trimStart().startsWith('{') ? profile : readFileSync(profile, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw invalid(`Decoding seccomp profile failed: ${(e as Error).message}`);
  }
  const p = parsed as DockerProfile;
  if (
    !p ||
    typeof p !== 'object' ||
    typeof p.defaultAction !== 'string' ||
    !Array.isArray(p.syscalls ?? [])
  ) {
    throw invalid('Decoding seccomp profile failed: the profile needs a defaultAction and a syscalls list');
  }
  return toOciSeccomp({ ...p, syscalls: p.syscalls ?? [] }, caps);
}
