/**
 * Parsing and validating a container's mount requests (`HostConfig.Binds`, `HostConfig.Mounts`,
 * `HostConfig.Tmpfs`, `Config.Volumes` and the image's `VOLUME`s) into one ordered plan, with
 * Docker's precedence and Docker's error wording (moby `volume/mounts/linux_parser.go`).
 * Pure functions: no filesystem access except the bind-source existence check passed in.
 */
import * as posix from 'node:path/posix';
import type { MountSpec } from '../model/container.js';
import { invalid } from '../util/errors.js';

export type PlannedType = 'bind' | 'volume' | 'tmpfs';

/** One mount of a container, as decided at create time and replayed at every start. */
export interface PlannedMount {
  type: PlannedType;
  /** Host path (bind), volume name (volume; '' until an anonymous volume is named), '' (tmpfs). */
  source: string;
  destination: string;
  rw: boolean;
  /** What inspect shows as `Mode` (the user's mode string, `z` for `-v name:/path`). */
  mode: string;
  /** What inspect shows as `Propagation` (binds: `rprivate` unless given). */
  propagation: string;
  /** Volume driver ('' = the daemon default, `local`). */
  driver: string;
  driverOpts?: Record<string, string>;
  labels?: Record<string, string>;
  /** Copy the image's content at the destination into the volume when it is empty. */
  copyData: boolean;
  /** The volume was made for this container (anonymous): `rm -v` / `--rm` remove it. */
  anonymous?: boolean;
  /** `-v /host:/ctr` creates a missing host directory (Docker's legacy rule); `--mount` does not. */
  createSource?: boolean;
  nonRecursive?: boolean;
  /** `--mount type=volume,volume-subpath=a/b`: mount only this directory of the volume. */
  subpath?: string;
  /** tmpfs mount data (`size=…,mode=…`) and flags. */
  tmpfsOptions?: string[];
  /** Where it came from (for messages and inspect): binds, mounts, tmpfs, image, volumes-from. */
  origin: 'binds' | 'mounts' | 'tmpfs' | 'image' | 'volumes-from';
}

const RW_MODES = new Set(['rw', 'ro']);
const LABEL_MODES = new Set(['z', 'Z']);
const PROPAGATION = new Set(['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared']);
const COPY_MODES = new Set(['nocopy']);
const CONSISTENCY = new Set(['consistent', 'cached', 'delegated', 'default']);

export const RESTRICTED_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function validMountMode(mode: string): boolean {
  if (mode === '') return true;
  const counts = [0, 0, 0, 0, 0];
  for (const o of mode.split(',')) {
    if (RW_MODES.has(o)) counts[0]++;
    else if (LABEL_MODES.has(o)) counts[1]++;
    else if (PROPAGATION.has(o)) counts[2]++;
    else if (COPY_MODES.has(o)) counts[3]++;
    else if (CONSISTENCY.has(o)) counts[4]++;
    else return false;
  }
  return counts.every((c) => c <= 1);
}

const errInvalidSpec = (raw: string) => `invalid volume specification: '${raw}'`;
const mountConfigError = (type: string, msg: string) =>
  invalid(`invalid mount config for type "${type}": ${msg}`);

function checkTarget(type: string, target: string | undefined): string {
  if (!target) throw mountConfigError(type, 'field Target must not be empty');
  if (posix.normalize(target.replace(/\\/g, '/')) === '/')
    throw mountConfigError(type, "invalid specification: destination can't be '/'");
  if (!posix.isAbsolute(target))
    throw mountConfigError(type, `invalid mount path: '${target}' mount path must be absolute`);
  return posix.normalize(target);
}

/** Validates a local volume name as Docker's local driver does. */
export function validateLocalName(name: string): void {
  if (name.length === 1)
    throw invalid('volume name is too short, names should be at least two alphanumeric characters');
  if (!RESTRICTED_NAME.test(name))
    throw invalid(
      `"${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
}

/** A name that is safe as a file name in the metadata store (any driver). */
export function validateAnyName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0'))
    throw invalid(`"${name}" includes invalid characters for a volume name`);
}

/** Parses one `HostConfig.Binds` entry (`src:dst[:mode]`, `name:dst`, or just `dst`). */
export function parseBind(raw: string, volumeDriver = ''): PlannedMount {
  const arr = raw.split(':');
  if (arr[0] === '' || arr.length > 3) throw invalid(errInvalidSpec(raw));
  let source = '';
  let target = '';
  let mode = '';
  if (arr.length === 1) target = arr[0];
  else if (arr.length === 2) {
    if (validMountMode(arr[1])) throw invalid(errInvalidSpec(raw));
    [source, target] = arr;
  } else [source, target, mode] = arr;
  if (!validMountMode(mode)) throw invalid(`invalid mode: ${mode}`);
  const type: PlannedType = posix.isAbsolute(source) ? 'bind' : 'volume';
  const opts = mode === '' ? [] : mode.split(',');
  let destination: string;
  try {
    destination = checkTarget(type, target);
  } catch (err) {
    throw invalid(`${errInvalidSpec(raw)}: ${(err as Error).message}`);
  }
  const propagation = opts.find((o) => PROPAGATION.has(o));
  const rw = !opts.includes('ro');
  if (type === 'bind') {
    return {
      type,
      source: posix.normalize(source),
      destination,
      rw,
      mode,
      propagation: propagation ?? 'rprivate',
      driver: '',
      copyData: false,
      createSource: true,
      origin: 'binds',
    };
  }
  if (propagation)
    throw invalid(
      `${errInvalidSpec(raw)}: invalid mount config for type "volume": propagation mode is only valid for bind mounts`,
    );
  return {
    type,
    source,
    destination,
    rw,
    mode: mode === '' ? 'z' : mode,
    propagation: '',
    driver: volumeDriver,
    copyData: !opts.includes('nocopy'),
    anonymous: source === '',
    origin: 'binds',
  };
}

/** Converts `TmpfsOptions` to mount data, as moby's ConvertTmpfsOptions does. */
export function tmpfsOptionsFromSpec(opt: MountSpec['TmpfsOptions'], readOnly: boolean): string[] {
  const out: string[] = [];
  if (readOnly) out.push('ro');
  if (opt?.Mode) out.push(`mode=${opt.Mode.toString(8)}`);
  if (opt?.SizeBytes) {
    let size = opt.SizeBytes;
    let suffix = '';
    for (const [s, d] of [
      ['g', 1 << 30],
      ['m', 1 << 20],
      ['k', 1 << 10],
    ] as const) {
      if (size % d === 0) {
        size = size / d;
        suffix = s;
        break;
      }
    }
    out.push(`size=${size}${suffix}`);
  }
  for (const o of opt?.Options ?? []) {
    if (o.length < 1 || o.length > 2) throw new Error('invalid option array length');
    if (o[0] !== 'exec' && o[0] !== 'noexec') throw new Error(`invalid option: ${o[0]}`);
    out.push(o.length === 1 ? o[0] : `${o[0]}=${o[1]}`);
  }
  return out;
}

/** Parses one `HostConfig.Mounts` entry (`--mount`). `exists` checks a bind source on the host. */
export function parseMountSpec(m: MountSpec, exists: (p: string) => boolean): PlannedMount {
  const type = m.Type as string;
  if (!['bind', 'volume', 'tmpfs'].includes(type)) {
    if (type === 'npipe' || type === 'cluster' || type === 'image')
      throw mountConfigError(type, 'mount type not supported on this daemon');
    throw mountConfigError(type, 'mount type unknown');
  }
  const destination = checkTarget(type, m.Target);
  const extra = (name: string) => mountConfigError(type, `field ${name} must not be specified`);
  const readOnly = !!m.ReadOnly;
  if (type === 'bind') {
    if (!m.Source) throw mountConfigError(type, 'field Source must not be empty');
    const prop = m.BindOptions?.Propagation;
    if (prop && !PROPAGATION.has(prop)) throw mountConfigError(type, `invalid propagation mode: ${prop}`);
    if (m.VolumeOptions) throw extra('VolumeOptions');
    if (m.TmpfsOptions) throw extra('TmpfsOptions');
    if (!posix.isAbsolute(m.Source))
      throw mountConfigError(type, `invalid mount path: '${m.Source}' mount path must be absolute`);
    const create = !!m.BindOptions?.CreateMountpoint;
    if (!create && !exists(m.Source))
      throw mountConfigError(type, `bind source path does not exist: ${m.Source}`);
    return {
      type: 'bind',
      source: posix.normalize(m.Source),
      destination,
      rw: !readOnly,
      mode: '',
      propagation: prop || 'rprivate',
      driver: '',
      copyData: false,
      createSource: create,
      nonRecursive: !!m.BindOptions?.NonRecursive,
      origin: 'mounts',
    };
  }
  if (type === 'volume') {
    if (m.BindOptions) throw extra('BindOptions');
    if (m.TmpfsOptions) throw extra('TmpfsOptions');
    const vo = m.VolumeOptions;
    const subpath = (vo as { Subpath?: unknown } | undefined)?.Subpath;
    if (subpath !== undefined && subpath !== '') {
      if (!m.Source) throw mountConfigError(type, 'must not set Subpath when using anonymous volumes');
      const sp = String(subpath);
      const clean = posix.normalize(sp);
      if (posix.isAbsolute(sp) || clean === '..' || clean.startsWith('../'))
        throw mountConfigError(type, 'subpath must be a relative path within the volume');
    }
    return {
      type: 'volume',
      ...(subpath ? { subpath: posix.normalize(String(subpath)) } : {}),
      source: m.Source ?? '',
      destination,
      rw: !readOnly,
      mode: '',
      propagation: '',
      driver: vo?.DriverConfig?.Name ?? '',
      driverOpts: vo?.DriverConfig?.Options ?? undefined,
      labels: vo?.Labels ?? undefined,
      copyData: !vo?.NoCopy && !subpath,
      anonymous: !m.Source,
      origin: 'mounts',
    };
  }
  if (m.BindOptions) throw extra('BindOptions');
  if (m.VolumeOptions) throw extra('VolumeOptions');
  if (m.Source) throw extra('Source');
  let tmpfsOptions: string[];
  try {
    tmpfsOptions = tmpfsOptionsFromSpec(m.TmpfsOptions, readOnly);
  } catch (err) {
    throw mountConfigError(type, (err as Error).message);
  }
  return {
    type: 'tmpfs',
    source: '',
    destination,
    rw: !readOnly,
    mode: '',
    propagation: '',
    driver: '',
    copyData: false,
    tmpfsOptions,
    origin: 'mounts',
  };
}

const TMPFS_FLAGS = new Set([
  'ro',
  'rw',
  'exec',
  'noexec',
  'suid',
  'nosuid',
  'dev',
  'nodev',
  'sync',
  'async',
  'dirsync',
  'atime',
  'noatime',
  'diratime',
  'nodiratime',
  'relatime',
  'norelatime',
  'strictatime',
  'nostrictatime',
  'mand',
  'nomand',
  'private',
  'rprivate',
  'shared',
  'rshared',
  'slave',
  'rslave',
]);
const TMPFS_DATA = new Set([
  'size',
  'mode',
  'uid',
  'gid',
  'nr_inodes',
  'nr_blocks',
  'mpol',
  'huge',
  'tmpcopyup',
  'notmpcopyup',
]);

/** Parses `HostConfig.Tmpfs` (`--tmpfs /run:rw,size=64m`). */
export function parseTmpfs(dest: string, opts: string): PlannedMount {
  if (!dest || !posix.isAbsolute(dest))
    throw invalid(`invalid mount path: '${dest}' mount path must be absolute`);
  if (posix.normalize(dest) === '/') throw invalid(`invalid specification: destination can't be '/'`);
  const list = opts ? opts.split(',').filter(Boolean) : [];
  for (const o of list) {
    const key = o.split('=')[0];
    if (!(TMPFS_FLAGS.has(o) || (o.includes('=') && TMPFS_DATA.has(key))))
      throw invalid(`invalid tmpfs option ["${o}"]`);
  }
  return {
    type: 'tmpfs',
    source: '',
    destination: posix.normalize(dest),
    rw: !list.includes('ro'),
    mode: '',
    propagation: '',
    driver: '',
    copyData: false,
    tmpfsOptions: list,
    origin: 'tmpfs',
  };
}

/** Parses a `VolumesFrom` entry: `container[:ro|rw]`. */
export function parseVolumesFrom(spec: string): { ref: string; mode: string } {
  if (spec === '') throw invalid('volumes-from specification cannot be an empty string');
  const i = spec.indexOf(':');
  const ref = i < 0 ? spec : spec.slice(0, i);
  const mode = i < 0 ? '' : spec.slice(i + 1);
  if (mode === '') return { ref, mode: '' };
  const opts = mode.split(',');
  if (!validMountMode(mode) || opts.some((o) => PROPAGATION.has(o) || COPY_MODES.has(o)))
    throw invalid(`invalid mode: ${mode}`);
  return { ref, mode };
}

/** The OCI mount options of a planned mount whose host source is known. */
export function ociOptions(m: PlannedMount): string[] {
  if (m.type === 'tmpfs') {
    const opts = ['nosuid', 'nodev', 'noexec'];
    for (const o of m.tmpfsOptions ?? []) {
      const neg = ({ exec: 'noexec', suid: 'nosuid', dev: 'nodev' } as Record<string, string>)[o];
      if (neg) {
        const at = opts.indexOf(neg);
        if (at >= 0) opts.splice(at, 1);
        continue;
      }
      if (o === 'rw') continue;
      if (!opts.includes(o)) opts.push(o);
    }
    return opts;
  }
  const opts = [m.nonRecursive ? 'bind' : 'rbind'];
  opts.push(m.propagation || 'rprivate');
  if (!m.rw) opts.push('ro');
  return opts;
}

/** Mount order: parents before children (Docker sorts by path depth). */
export function byDepth<T extends { destination: string }>(list: T[]): T[] {
  const depth = (p: string) => posix.normalize(p).split('/').filter(Boolean).length;
  return [...list].sort((a, b) => depth(a.destination) - depth(b.destination));
}
