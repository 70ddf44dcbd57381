/**
 * Log drivers and their options as Docker names and validates them: `json-file` (the default,
 * Docker's on-disk format and rotation), `k8s-file` (conmon's own format, kept for those who
 * chose it), `none`. Anything else is refused at create with Docker's words.
 */
import { invalid } from '../../util/errors.js';
import { validateAttrs } from './attrs.js';

export const LOG_DRIVERS = ['json-file', 'k8s-file', 'none'] as const;
export type LogDriver = (typeof LOG_DRIVERS)[number];
export const DEFAULT_LOG_DRIVER: LogDriver = 'json-file';

export interface LogConfig {
  Type: string;
  Config: Record<string, string>;
}

/** What the writer of a json-file log needs. */
export interface Rotation {
  /** Bytes; undefined = never rotate. */
  maxSize?: number;
  /** Files kept, the current one included (Docker's `max-file`, default 1). */
  maxFiles: number;
  compress: boolean;
}

/** Options every driver takes (dockerd's `builtInLogOpts`). */
const COMMON = new Set(['mode', 'max-buffer-size']);
const JSON_FILE = new Set(['max-file', 'max-size', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag']);
const K8S_FILE = new Set(['max-size']);

/**
 * Docker's `units.FromHumanSize`: decimal multipliers (k = 1000), an optional unit; a bare number
 * is bytes.
 */
export function fromHumanSize(v: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m || m[1].split('.').length > 2) throw invalid(`invalid size: '${v}'`);
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 }[(m[2] ?? '').toLowerCase() as 'k'];
  return Math.floor(Number(m[1]) * mult);
}

function atoi(v: string): number {
  if (!/^[+-]?\d+$/.test(v)) throw invalid(`strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`);
  return Number(v);
}

function parseBool(v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw invalid(`strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`);
}

/** json-file's rotation settings, with dockerd's checks and messages. */
export function rotationOf(opts: Record<string, string>): Rotation {
  let maxSize: number | undefined;
  if (opts['max-size'] !== undefined) {
    maxSize = fromHumanSize(opts['max-size']);
    if (maxSize <= 0) throw invalid('max-size must be a positive number');
  }
  let maxFiles = 1;
  if (opts['max-file'] !== undefined) {
    maxFiles = atoi(opts['max-file']);
    if (maxFiles < 1) throw invalid('max-file cannot be less than 1');
  }
  let compress = false;
  if (opts.compress !== undefined) {
    compress = parseBool(opts.compress);
    if (compress && (maxFiles === 1 || maxSize === undefined)) {
      throw invalid('compress cannot be true when max-file is less than 2 or max-size is not set');
    }
  }
  return { maxSize, maxFiles, compress };
}

/**
 * The container's log configuration after the daemon's defaults (`log-driver`/`log-opts` in
 * daemon.json) are applied, validated as dockerd validates at create.
 */
export function resolveLogConfig(requested: Partial<LogConfig> | undefined, defaults: LogConfig): LogConfig {
  const type = requested?.Type || defaults.Type;
  // Docker: the daemon's options apply only when the container names no driver, or the same one.
  const config = requested?.Type && requested.Type !== defaults.Type ? { ...(requested.Config ?? {}) } : { ...defaults.Config, ...(requested?.Config ?? {}) };
  validateLogConfig({ Type: type, Config: config });
  return { Type: type, Config: config };
}

export function validateLogConfig(c: LogConfig): void {
  if (c.Type === 'none') return;
  const mode = c.Config.mode;
  if (mode !== undefined && mode !== '' && mode !== 'blocking' && mode !== 'non-blocking') throw invalid(`logger: logging mode not supported: ${mode}`);
  if (!(LOG_DRIVERS as readonly string[]).includes(c.Type)) throw invalid(`logger: no log driver named '${c.Type}' is registered`);
  const known = c.Type === 'json-file' ? JSON_FILE : K8S_FILE;
  for (const key of Object.keys(c.Config)) {
    if (COMMON.has(key)) continue;
    if (!known.has(key)) throw invalid(`unknown log opt '${key}' for ${c.Type} log driver`);
  }
  if (c.Type === 'json-file') {
    rotationOf(c.Config);
    validateAttrs(c.Config);
  }
  else if (c.Config['max-size'] !== undefined && fromHumanSize(c.Config['max-size']) <= 0) throw invalid('max-size must be a positive number');
}
