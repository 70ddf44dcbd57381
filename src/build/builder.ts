/**
 * One build: the stages the target needs, in order, each instruction dispatched against the
 * stage's state (image config, layers, history, ARGs) and committed as an image whose parent is
 * the previous step's, as Docker's classic builder does. Every step first asks the cache.
 * Output lines are the classic builder's (`Step 2/6 : RUN …`, ` ---> Running in …`, ` ---> <id>`).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type { ContainerService } from '../containers/service.js';
import type { HostConfig } from '../model/container.js';
import { goArch } from '../util/platform.js';
import type { Image, ImageConfig, ImageService } from '../images/index.js';
import type { LayerStore, RootfsStore } from '../layers/index.js';
import { BerthError, invalid } from '../util/errors.js';
import { shortId } from '../util/ids.js';
import type { JsonMessageStream } from '../util/json-message.js';
import type { Reference } from '../util/reference.js';
import { log } from '../util/log.js';
import { BuildArgs, PREDEFINED_ARGS } from './args.js';
import { resolveImage } from './base-image.js';
import { type BuildCache, stepKey } from './cache.js';
import { StepLookup } from './cache-from.js';
import { copyInto, hashSources, mkdirInImage, parseChmod, parseChown } from './copy.js';
import {
  type Dockerfile,
  flagValue,
  flagValues,
  type Instruction,
  jsonForm,
  parseDockerfile,
  parseTrigger,
  type Stage,
  selectStages,
  stageBase,
  stageBefore,
  stageDependencies,
} from './dockerfile.js';
import { applyConfigStep, commandOf } from './config-steps.js';
import { type BuildOptions, type BuildOutput, type RegistryConfig, StepFailed } from './index.js';
import { mountStubs, parseMount, prepareMounts } from './mounts.js';
import { OrderedOutput } from './output.js';
import { gatherSources, isUrl } from './remote.js';
import { runStep } from './run-step.js';
import { processWord, splitWords, type Vars } from './shell-lex.js';

const DEFAULT_SHELL = ['/bin/sh', '-c'];

type History = NonNullable<ImageConfig['history']>[number];

interface StageState {
  imageId: string; // '' until a scratch stage made its first image
  config: ImageConfig;
  /** Declared ARGs of this stage and their values (undefined: declared without a value). */
  args: Map<string, string | undefined>;
  cmdSet: boolean;
  /** The stage's index in the Dockerfile. */
  index: number;
  /** Its lane of the build's output (see output.ts). */
  out: BuildOutput;
  /** The number of the step being dispatched (`Step n/m`). */
  step: number;
}

export interface BuilderDeps {
  images: ImageService;
  rootfs: RootfsStore & LayerStore;
  containers: ContainerService;
  cache: BuildCache;
  /** Private directory of this build (the context lives below it). */
  work: string;
  /** `<dataRoot>/build` (cache mounts live below it). */
  buildRoot: string;
  /** Pulls an image from its registry; returns its ID. Errors are thrown, progress written to `out`. */
  pull(ref: Reference, creds: RegistryConfig[string], out: JsonMessageStream): Promise<string>;
  /** Records/clears scratch filesystems so a crash mid-step can be cleaned up at the next start. */
  track: { add(id: string): Promise<void>; remove(id: string): Promise<void> };
}

function copyConfig(c: ImageConfig): ImageConfig {
  return JSON.parse(JSON.stringify(c)) as ImageConfig;
}

function emptyConfig(): ImageConfig {
  return {
    architecture: goArch(),
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

export class Builder {
  private df!: Dockerfile;
  private total = 0;
  private readonly args: BuildArgs;
  /** The stages being built, by index: a stage waits for the ones it needs. */
  private readonly stages = new Map<number, Promise<StageState>>();
  /** Cancels every running stage: the client went away or another stage failed. */
  private readonly cancel = new AbortController();
  private readonly containersMade = new Set<string>();
  private contextRoot = '';
  /** `SOURCE_DATE_EPOCH`: every timestamp of the image (config, history, file times in layers) clamped to it. */
  private epoch?: Date;
  private lookup?: Promise<StepLookup>;

  constructor(
    private readonly d: BuilderDeps,
    private readonly o: BuildOptions,
    private readonly out: BuildOutput,
    private readonly signal: AbortSignal,
  ) {
    this.args = new BuildArgs(o.buildArgs);
    if (signal.aborted) this.cancel.abort();
    else signal.addEventListener('abort', () => this.cancel.abort(), { once: true });
  }

  private now(): string {
    return (this.epoch ?? new Date()).toISOString().replace('.000Z', 'Z');
  }

  /** A step's cache key; a reproducible build (`SOURCE_DATE_EPOCH`) keeps its own entries. */
  private key(parent: string, instruction: string, contentHash = ''): string {
    return stepKey(
      parent,
      this.epoch ? `${instruction}\nSOURCE_DATE_EPOCH=${this.epoch.getTime()}` : instruction,
      contentHash,
    );
  }

  private checkCancelled(): void {
    if (this.cancel.signal.aborted) throw invalid('Build cancelled');
  }

  /** Runs the build; returns the image ID. Containers it made are removed whatever happens. */
  async build(dockerfileText: string, contextRoot: string, dockerfileName: string): Promise<string> {
    this.contextRoot = contextRoot;
    const epoch = this.o.buildArgs.SOURCE_DATE_EPOCH;
    if (typeof epoch === 'string') {
      if (!/^\d+$/.test(epoch)) throw invalid(`invalid SOURCE_DATE_EPOCH: ${epoch}`);
      this.epoch = new Date(Number(epoch) * 1000);
      this.args.use('SOURCE_DATE_EPOCH');
    }
    this.df = parseDockerfile(dockerfileText, dockerfileName);
    try {
      return await this.run();
    } finally {
      for (const id of this.containersMade) await this.removeContainer(id);
    }
  }

  private async removeContainer(id: string): Promise<void> {
    await this.d.containers.remove(id, { force: true, volumes: true }).catch((err) => {
      if (!(err instanceof BerthError && err.kind === 'not-found'))
        log.warn('build: cannot remove step container', { id, err });
    });
    this.containersMade.delete(id);
  }

  private async run(): Promise<string> {
    const df = this.df;
    // Meta ARGs (before the first FROM) only feed FROM lines, unless a stage declares them again.
    for (const ins of df.metaArgs) this.args.declareMeta(ins.args, df.escape);
    const stages = selectStages(this.df, this.o.target, this.args.meta);
    if (Object.keys(this.o.labels).length) {
      const last = stages[stages.length - 1];
      const text = Object.entries(this.o.labels)
        .map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`)
        .join(' ');
      last.instructions = [
        ...last.instructions,
        { keyword: 'LABEL', line: 0, args: text, flags: [], text: `LABEL ${text}`, heredocs: [] },
      ];
    }
    this.total = df.metaArgs.length + stages.reduce((n, s) => n + 1 + s.instructions.length, 0);
    let step = 0;
    for (const ins of df.metaArgs) this.out.stream(`Step ${++step}/${this.total} : ${ins.text}\n`);
    // Every stage starts once the stages it needs are built: independent ones run at the same time.
    const lanes = new OrderedOutput(this.out, stages.length);
    let failure: unknown;
    const running = stages.map((stage, lane) => {
      const first = step + 1;
      step += 1 + stage.instructions.length;
      const deps = stageDependencies(df, stage, this.args.meta).map((i) => this.stages.get(i)!);
      const p = (async () => {
        await Promise.all(deps);
        this.checkCancelled();
        const state = await this.buildStage(stage, lanes.lane(lane), first);
        lanes.finish(lane);
        return state;
      })();
      p.catch((err) => {
        failure ??= err;
        this.cancel.abort();
      });
      this.stages.set(stage.index, p);
      return p;
    });
    const settled = await Promise.allSettled(running);
    if (failure !== undefined || settled.some((r) => r.status === 'rejected')) {
      lanes.flushAll();
      throw failure ?? (settled.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
    }
    const state = (settled[settled.length - 1] as PromiseFulfilledResult<StageState>).value;
    if (!state.imageId) throw invalid('No image was generated. Is your Dockerfile empty?');
    const unused = this.args.unused();
    if (unused.length)
      this.out.stream(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n`);
    return state.imageId;
  }

  /** A stage built before stage `before` (by name or index), waited for; undefined when `ref` names none. */
  private async stageBefore(ref: string, before: number): Promise<StageState | undefined> {
    const i = stageBefore(this.df, ref, before);
    return i === undefined ? undefined : this.stages.get(i);
  }

  // ---- stages ----

  private async buildStage(stage: Stage, out: BuildOutput, firstStep: number): Promise<StageState> {
    out.stream(`Step ${firstStep}/${this.total} : ${stage.from.text}\n`);
    const baseName = stageBase(stage, this.args.meta, this.df.escape);
    const fresh = {
      args: new Map<string, string | undefined>(),
      cmdSet: false,
      index: stage.index,
      out,
      step: firstStep,
    };
    let state: StageState;
    const prior = await this.stageBefore(baseName, stage.index);
    if (prior) {
      state = { ...fresh, imageId: prior.imageId, config: copyConfig(prior.config) };
    } else if (baseName === 'scratch') {
      state = { ...fresh, imageId: '', config: emptyConfig() };
    } else {
      const img = await this.resolveImage(baseName, out);
      state = { ...fresh, imageId: img.id, config: copyConfig(img.config) };
    }
    state.config.config ??= {};
    state.config.history ??= [];
    out.stream(` ---> ${state.imageId ? shortId(state.imageId) : ''}\n`);
    const triggers = state.config.config.OnBuild ?? [];
    if (triggers.length) {
      out.stream(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
      // The triggers run once, in the child; the child image does not inherit them.
      state.config.config.OnBuild = null;
      for (const t of triggers) await this.dispatch(state, parseTrigger(t, stage.from.line));
    }
    for (const ins of stage.instructions) {
      this.checkCancelled();
      out.stream(`Step ${++state.step}/${this.total} : ${ins.text}\n`);
      const t0 = performance.now();
      await this.dispatch(state, ins);
      log.debug('build step', {
        step: state.step,
        keyword: ins.keyword,
        ms: Math.round(performance.now() - t0),
      });
      out.stream(` ---> ${shortId(state.imageId)}\n`);
    }
    if (state.imageId) out.aux({ ID: state.imageId });
    return state;
  }

  private resolveImage(ref: string, out: BuildOutput): Promise<Image> {
    return resolveImage(
      { images: this.d.images, pull: this.d.pull },
      ref,
      { pull: this.o.pull, registryConfig: this.o.registryConfig },
      out,
    );
  }

  // ---- variables ----

  /** Build args a step sees: declared ones with a value, plus predefined proxy args; ENV wins. */
  private allowedArgs(state: StageState): [string, string][] {
    return this.args.visible(state.config.config.Env ?? [], state.args);
  }

  private vars(state: StageState): Vars {
    return this.args.vars(state.config.config.Env ?? [], state.args);
  }

  private word(state: StageState, w: string): string {
    return processWord(w, this.vars(state), this.df.escape);
  }

  private shell(state: StageState): string[] {
    const s = state.config.config.Shell;
    return s?.length ? [...s] : [...DEFAULT_SHELL];
  }

  // ---- dispatch ----

  private async dispatch(state: StageState, ins: Instruction): Promise<void> {
    const rc = state.config.config;
    const esc = this.df.escape;
    switch (ins.keyword) {
      case 'ARG': {
        const pairs = this.args.declare(ins.args, this.vars(state), esc, state.args);
        return this.commitMeta(
          state,
          `ARG ${pairs.map((p) => (p.value === undefined ? p.key : `${p.key}=${p.value}`)).join(' ')}`,
        );
      }
      case 'WORKDIR': {
        const dir = this.word(state, ins.args);
        rc.WorkingDir = path.posix.resolve(rc.WorkingDir || '/', dir);
        const wd = rc.WorkingDir;
        return this.commitFiles(state, `WORKDIR ${wd}`, '', (root) => mkdirInImage(root, wd));
      }
      case 'RUN':
        return this.runInstruction(state, ins);
      case 'COPY':
      case 'ADD':
        return this.copyInstruction(state, ins);
      default: {
        const step = applyConfigStep(ins, {
          config: state.config,
          vars: this.vars(state),
          escape: this.df.escape,
          shell: this.shell(state),
          cmdSet: state.cmdSet,
        });
        state.cmdSet = step.cmdSet;
        return this.commitMeta(state, step.comment);
      }
    }
  }

  // ---- committing ----

  private history(state: StageState, createdBy: string, empty: boolean): History {
    const h: History = { created: this.now(), created_by: createdBy };
    if (state.config.author) h.author = state.config.author;
    if (empty) h.empty_layer = true;
    return h;
  }

  /**
   * Looks the step up in the cache (and the `--cache-from` images, matched by `createdBy`, its
   * history entry); on a hit the state becomes the cached image.
   */
  private async probe(state: StageState, key: string, createdBy: string): Promise<boolean> {
    if (this.o.noCache) return false;
    this.lookup ??= StepLookup.open(this.d, this.o.cacheFrom ?? []);
    const img = await (await this.lookup).find(key, state.imageId, createdBy, state.config);
    if (!img) return false;
    state.out.stream(' ---> Using cache\n');
    state.imageId = img.id;
    state.config = copyConfig(img.config);
    state.config.config ??= {};
    return true;
  }

  /** Writes the state's config as a new image (child of the current one). */
  private async saveImage(state: StageState, key: string, size: number, description: string): Promise<void> {
    const c = state.config;
    c.created = this.now();
    const ordered = {
      architecture: c.architecture,
      ...(c.author ? { author: c.author } : {}),
      config: c.config,
      created: c.created,
      history: c.history,
      os: c.os,
      rootfs: { type: 'layers', diff_ids: c.rootfs.diff_ids },
    };
    const img = await this.d.images.createFromConfig(Buffer.from(JSON.stringify(ordered)), {
      parent: state.imageId || undefined,
    });
    state.imageId = img.id;
    state.config = copyConfig(img.config);
    await this.d.cache.put(key, {
      image: img.id,
      created: c.created,
      size,
      description,
      lastUsed: c.created,
    });
  }

  /** A step that only changes the config (ENV, CMD, LABEL…). */
  private async commitMeta(state: StageState, comment: string): Promise<void> {
    const key = this.key(state.imageId, `${comment}\n${this.argsKey(state)}`);
    const createdBy = `${this.shell(state).join(' ')} #(nop)  ${comment}`;
    // On a hit the state becomes the cached image; on a miss it is left as the dispatcher made it.
    if (await this.probe(state, key, createdBy)) return;
    state.config.history = [...(state.config.history ?? []), this.history(state, createdBy, true)];
    await this.saveImage(state, key, 0, comment);
  }

  private argsKey(state: StageState): string {
    return this.allowedArgs(state)
      .filter(([k]) => !PREDEFINED_ARGS.has(k))
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join('\n');
  }

  /** Applies a layer tar (the diff of a scratch filesystem or of a step's container) to the state. */
  private async commitLayer(
    state: StageState,
    key: string,
    createdBy: string,
    diff: Readable | undefined,
    description: string,
  ): Promise<void> {
    let diffId: string | undefined;
    let size = 0;
    try {
      if (diff) {
        diffId = await this.d.images.applyHeld(diff);
        size = this.d.rootfs.layerInfo(diffId)?.size ?? 0;
        state.config.rootfs = { type: 'layers', diff_ids: [...state.config.rootfs.diff_ids, diffId] };
      }
      state.config.history = [...(state.config.history ?? []), this.history(state, createdBy, !diffId)];
      await this.saveImage(state, key, size, description);
    } finally {
      if (diffId) this.d.images.release(diffId);
    }
  }

  /**
   * Makes a filesystem over the current image without starting anything, lets `fn` change it, and
   * commits the changes (none: a metadata-only step). The cache is asked first.
   */
  private async commitFiles(
    state: StageState,
    comment: string,
    contentHash: string,
    fn: (root: string) => Promise<void>,
  ): Promise<void> {
    const key = this.key(state.imageId, comment, contentHash);
    const createdBy = `${this.shell(state).join(' ')} #(nop) ${comment}`;
    if (await this.probe(state, key, createdBy)) return;
    const id = `build-${randomBytes(12).toString('hex')}`;
    await this.d.track.add(id);
    try {
      await this.d.rootfs.create(id, state.config.rootfs.diff_ids);
      const root = await this.d.rootfs.mount(id);
      await fn(root);
      await this.d.rootfs.unmount(id);
      const changed = (await this.d.rootfs.changes(id)).length > 0;
      await this.commitLayer(
        state,
        key,
        createdBy,
        changed ? await this.d.rootfs.diffTar(id, { clampMtime: this.epoch }) : undefined,
        comment,
      );
    } finally {
      await this.d.rootfs
        .remove(id)
        .catch((err) => log.warn('build: cannot remove scratch layer', { id, err }));
      await this.d.track.remove(id);
    }
  }

  /** An image's filesystem on a scratch overlay (nothing is committed); `release` removes it. */
  private async openImageRoot(diffIds: string[]): Promise<{ root: string; release: () => Promise<void> }> {
    const id = `build-${randomBytes(12).toString('hex')}`;
    await this.d.track.add(id);
    const release = async () => {
      await this.d.rootfs
        .remove(id)
        .catch((err) => log.warn('build: cannot remove scratch layer', { id, err }));
      await this.d.track.remove(id);
    };
    try {
      await this.d.rootfs.create(id, diffIds);
      return { root: await this.d.rootfs.mount(id), release };
    } catch (err) {
      await release();
      throw err;
    }
  }

  private async withImageRoot<T>(diffIds: string[], fn: (root: string) => Promise<T>): Promise<T> {
    const { root, release } = await this.openImageRoot(diffIds);
    try {
      return await fn(root);
    } finally {
      await release();
    }
  }

  /** A stage built before (by name or index) or a local image, for `--from=`. */
  private async imageOf(state: StageState, ref: string): Promise<{ id: string; config: ImageConfig }> {
    const stage = await this.stageBefore(ref, state.index);
    if (stage) {
      if (!stage.imageId) throw invalid(`--from=${ref}: the stage has no filesystem`);
      return { id: stage.imageId, config: stage.config };
    }
    if (/^\d+$/.test(ref))
      throw invalid(`invalid from flag value ${ref}: refers to a stage that is not built before this one`);
    const img = await this.resolveImage(ref, state.out);
    return { id: img.id, config: img.config };
  }

  // ---- RUN ----

  private async runInstruction(state: StageState, ins: Instruction): Promise<void> {
    const unsupported = ins.flags.find((f) => f.name !== 'network' && f.name !== 'mount');
    if (unsupported)
      throw invalid(`the --${unsupported.name} option of RUN is not supported by this builder`);
    const rc = state.config.config;
    const cmd = commandOf(ins, this.shell(state));
    const args = this.allowedArgs(state);
    const visible = args.filter(([k]) => !PREDEFINED_ARGS.has(k));
    // As Docker records it: `|2 A=1 B=2 /bin/sh -c …` when build args are in play.
    const saved = visible.length
      ? [`|${visible.length}`, ...visible.map(([k, v]) => `${k}=${v}`), ...cmd]
      : cmd;
    const network = flagValue(ins, 'network');
    if (network !== undefined && !['default', 'none', 'host'].includes(network))
      throw invalid(`unsupported network mode for RUN: ${network}`);
    const mountReqs = flagValues(ins, 'mount').map((v) =>
      parseMount(this.word(state, v), rc.WorkingDir ?? '/'),
    );
    const held: (() => Promise<void>)[] = [];
    try {
      const mounts = await prepareMounts(mountReqs, {
        buildRoot: this.d.buildRoot,
        work: this.d.work,
        contextRoot: this.contextRoot,
        secrets: this.o.secrets ?? {},
        rootOf: async (ref) => {
          const image = await this.imageOf(state, ref);
          const { root, release } = await this.openImageRoot(image.config.rootfs.diff_ids);
          held.push(release);
          return root;
        },
      });
      const key = this.key(state.imageId, `RUN ${JSON.stringify(saved)} ${network ?? ''}\n${mounts.key}`);
      // A RUN whose mounts or network its history entry does not show is reused from the local cache only.
      const plain = !mountReqs.length && network === undefined;
      if (await this.probe(state, key, plain ? saved.join(' ') : '')) return;
      if (!state.imageId) await this.commitMeta(state, 'scratch');
      const hostConfig: HostConfig = { ...this.o.hostConfig };
      if (network && network !== 'default') hostConfig.NetworkMode = network;
      if (mounts.binds.length) hostConfig.Binds = mounts.binds;
      if (Object.keys(mounts.tmpfs).length) hostConfig.Tmpfs = mounts.tmpfs;
      await this.runContainer(
        state,
        key,
        cmd,
        saved,
        hostConfig,
        args,
        mountReqs.map((m) => m.target),
      );
    } finally {
      for (const release of held) await release();
    }
  }

  /** Runs a RUN step's container, commits its diff (minus mount stubs) and removes it. */
  private async runContainer(
    state: StageState,
    key: string,
    cmd: string[],
    saved: string[],
    hostConfig: HostConfig,
    args: [string, string][],
    mountTargets: string[],
  ): Promise<void> {
    const rc = state.config.config;
    let containerId: string | undefined;
    const { exitCode } = await runStep(this.d.containers, {
      image: state.imageId,
      cmd,
      env: [...(rc.Env ?? []), ...args.map(([k, v]) => `${k}=${v}`)],
      workdir: rc.WorkingDir ?? '',
      user: rc.User ?? '',
      hostConfig,
      signal: this.cancel.signal,
      onCreated: (id) => {
        containerId = id;
        this.containersMade.add(id);
        state.out.stream(` ---> Running in ${shortId(id)}\n`);
      },
      onOutput: (text) => state.out.stream(text),
    }).catch(async (err) => {
      if (containerId) await this.removeContainer(containerId);
      throw err;
    });
    const id = containerId!;
    try {
      this.checkCancelled();
      if (exitCode !== 0)
        throw new StepFailed(
          `The command '${cmd.join(' ')}' returned a non-zero code: ${exitCode}`,
          exitCode,
        );
      let changes = await this.d.rootfs.changes(id);
      const stubs = mountStubs(mountTargets, new Set(changes.filter((c) => c.Kind === 1).map((c) => c.Path)));
      if (stubs.length) {
        await this.removeStubs(id, stubs);
        changes = await this.d.rootfs.changes(id);
      }
      await this.commitLayer(
        state,
        key,
        saved.join(' '),
        changes.length ? await this.d.rootfs.diffTar(id, { clampMtime: this.epoch }) : undefined,
        `RUN ${cmd.join(' ')}`,
      );
    } finally {
      await this.removeContainer(id);
    }
    state.out.stream(` ---> Removed intermediate container ${shortId(id)}\n`);
  }

  /** Removes the empty mount points a runtime created for RUN mounts, through the container's overlay. */
  private async removeStubs(id: string, stubs: string[]): Promise<void> {
    const merged = await this.d.rootfs.mount(id);
    try {
      for (const stub of stubs) {
        const host = path.join(merged, stub);
        const st = await fs.lstat(host).catch(() => undefined);
        if (st?.isDirectory() && (await fs.readdir(host)).length === 0) await fs.rmdir(host);
        else if (st?.isFile() && st.size === 0) await fs.rm(host);
      }
    } finally {
      await this.d.rootfs.unmount(id);
    }
  }

  // ---- COPY / ADD ----

  private async copyInstruction(state: StageState, ins: Instruction): Promise<void> {
    const what = ins.keyword;
    for (const f of ins.flags) {
      if (
        !['from', 'chown', 'chmod', 'link', ...(what === 'ADD' ? ['checksum', 'keep-git-dir'] : [])].includes(
          f.name,
        )
      )
        throw invalid(`dockerfile parse error on line ${ins.line}: unknown flag: --${f.name}`);
    }
    const json = jsonForm(ins.args);
    const words =
      json ?? splitWords(ins.args, this.df.escape).map((w) => (w.startsWith('<<') ? w : this.word(state, w)));
    if (words.length < 2)
      throw invalid(
        `${what} requires at least two arguments, but only one was provided. Destination could not be determined.`,
      );
    const rawDest = words[words.length - 1];
    const srcs = words.slice(0, -1);
    if (what === 'ADD' && srcs.some((s) => /^git:\/\/|^git@|\.git(#.*)?$/.test(s)))
      throw invalid('ADD of a git repository is not supported by this builder');
    if (what === 'COPY' && srcs.some(isUrl)) throw invalid("source can't be a URL for COPY");
    const checksum = flagValue(ins, 'checksum');
    if (checksum !== undefined && !srcs.every(isUrl))
      throw invalid("checksum can't be specified for non-HTTP(S) sources");
    const wd = state.config.config.WorkingDir || '/';
    const dest = path.posix.resolve(wd, rawDest);
    const destIsDir = rawDest.endsWith('/') || rawDest === '.' || rawDest.endsWith('/.');
    const chownSpec = flagValue(ins, 'chown');
    const chmod = flagValue(ins, 'chmod');
    const mode = chmod !== undefined ? parseChmod(this.word(state, chmod)) : undefined;
    const from = flagValue(ins, 'from');
    const flagsText = ins.flags
      .filter((f) => f.name !== 'link')
      .map((f) => `--${f.name}=${f.value ?? ''}`)
      .join(' ');
    const run = async (sourceRoot: string, sourceId: string) => {
      const resolved = await gatherSources(srcs, {
        root: sourceRoot,
        heredocs: ins.heredocs,
        scratch: path.join(this.d.work, `step-${state.step}`),
        what,
        checksum: checksum !== undefined ? this.word(state, checksum) : undefined,
      });
      const hash = await hashSources(resolved);
      const comment = `${what} ${flagsText ? `${flagsText} ` : ''}${sourceId}${hash} in ${dest}${destIsDir ? '/' : ''}`;
      await this.commitFiles(state, comment, hash, async (root) => {
        const owner =
          chownSpec !== undefined ? await parseChown(root, this.word(state, chownSpec)) : undefined;
        await copyInto(root, resolved, {
          dest,
          destIsDir,
          owner,
          chmod: mode,
          extractTars: what === 'ADD' && from === undefined,
          what,
        });
      });
    };
    if (from === undefined) return run(this.contextRoot, '');
    const image = await this.imageOf(state, this.word(state, from));
    return this.withImageRoot(image.config.rootfs.diff_ids, (root) => run(root, `from:${image.id} `));
  }
}
