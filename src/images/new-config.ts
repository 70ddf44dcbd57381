/**
 * The config of an image made here rather than pulled: by `docker import` (a tar and `--change`
 * lines) and by `docker commit` (a container's config over its image's, Docker's merge rules).
 */
import { invalid } from '../util/errors.js';
import { goArch } from '../util/platform.js';
import { familiar, parseReference } from '../util/reference.js';
import { applyChanges, type RunConfig } from './changes.js';
import type { CommitOptions, ImageConfig, ImportOptions } from './index.js';

/** What an import makes, checked before its tar is read: the tag (`repo` may carry it) and the run config. */
export interface Plan {
  ref?: string;
  runConfig: RunConfig;
}

export function planImport(opts: ImportOptions): Plan {
  const runConfig = applyChanges({}, opts.changes ?? []);
  if (!opts.repo) return { runConfig };
  const r = parseReference(opts.repo);
  if (r.digest) throw invalid('cannot import digest reference');
  if (opts.tag) {
    if (r.tag) throw invalid(`invalid reference format: ${opts.repo}:${opts.tag}`);
    parseReference(`${r.repo}:${opts.tag}`);
  }
  return { ref: opts.tag ? `${r.repo}:${opts.tag}` : familiar(r), runConfig };
}

export function importedConfig(
  opts: ImportOptions,
  runConfig: RunConfig,
  diffId: string,
): Record<string, unknown> {
  const [os, arch] = (opts.platform || `linux/${goArch()}`).split('/');
  const created = new Date().toISOString();
  const comment = opts.message || 'Imported from -';
  return {
    architecture: arch || goArch(),
    comment,
    config: runConfig,
    created,
    history: [{ created, comment }],
    os: os || 'linux',
    rootfs: { type: 'layers', diff_ids: [diffId] },
  };
}

/** What a commit makes, checked before the diff is read: the tag and the run config. */
export function planCommit(opts: CommitOptions): Plan {
  let ref: string | undefined;
  if (opts.repo) {
    const r = parseReference(opts.repo);
    if (r.digest) throw invalid('cannot commit to a digest reference');
    ref = opts.tag ? `${r.repo}:${opts.tag}` : familiar(r);
    parseReference(ref);
  } else if (opts.tag) throw invalid('tag without a repository');
  return { ref, runConfig: runConfigOf(opts) };
}

/** The container's settings that become the image's defaults (empty values do not). */
const COMMITTED = [
  'User',
  'Env',
  'Cmd',
  'Entrypoint',
  'WorkingDir',
  'Labels',
  'ExposedPorts',
  'Volumes',
  'StopSignal',
  'Healthcheck',
  'OnBuild',
  'Shell',
] as const;

function runConfigOf(opts: CommitOptions): RunConfig {
  const base: RunConfig = {};
  const cc = opts.containerConfig;
  for (const k of COMMITTED) {
    const v = cc[k];
    if (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0 && k !== 'Cmd'))
      (base as Record<string, unknown>)[k] = v;
  }
  if (base.Labels && Object.keys(base.Labels).length === 0) delete base.Labels;
  return applyChanges(base, opts.changes ?? []);
}

export function committedConfig(
  opts: CommitOptions,
  cfg: RunConfig,
  diffId: string,
): Record<string, unknown> {
  const cc = opts.containerConfig;
  const created = new Date().toISOString();
  const parent = opts.parent;
  // Without the parent image (removed meanwhile) its layers still need one history entry each.
  type History = NonNullable<ImageConfig['history']>;
  const history: History = parent
    ? [...(parent.config.history ?? [])]
    : opts.baseDiffIds.map(() => ({ created, created_by: '', comment: 'layer of a removed image' }));
  const entry: History[number] = { created, created_by: (cc.Cmd ?? []).join(' ') };
  if (opts.author) entry.author = opts.author;
  if (opts.comment) entry.comment = opts.comment;
  history.push(entry);
  const config: Record<string, unknown> = { architecture: parent?.config.architecture ?? goArch() };
  if (opts.author) config.author = opts.author;
  if (opts.comment) config.comment = opts.comment;
  return Object.assign(config, {
    config: cfg,
    container: opts.containerId,
    created,
    history,
    os: parent?.config.os ?? 'linux',
    rootfs: { type: 'layers', diff_ids: [...opts.baseDiffIds, diffId] },
  });
}
