/**
 * The instructions that only change the image config (ENV, LABEL, MAINTAINER, USER, STOPSIGNAL,
 * EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD), as edits of the config with
 * Docker's rules. Each returns the comment its history entry and cache key carry.
 */
import type { ImageConfig } from '../images/index.js';
import { invalid } from '../util/errors.js';
import { flagValue, type Instruction, jsonForm } from './dockerfile.js';
import { keyValues, processWord, splitWords, type Vars } from './shell-lex.js';

type RunConfig = ImageConfig['config'];

export interface ConfigStepContext {
  config: ImageConfig;
  vars: Vars;
  escape: string;
  /** The stage's SHELL (or the default) for shell-form commands. */
  shell: string[];
  /** Whether this stage set a CMD already (ENTRYPOINT keeps it then). */
  cmdSet: boolean;
}

/** Command of RUN/CMD/ENTRYPOINT: exec form as is, shell form through the shell. */
export function commandOf(ins: Instruction, shell: string[]): string[] {
  const json = jsonForm(ins.args);
  if (json) return json;
  if (ins.heredocs.length && ins.keyword === 'RUN') {
    const onlyDoc = /^<<[A-Za-z_][A-Za-z0-9_]*$/.test(ins.args.trim());
    // `RUN <<EOF` alone: the body is the script. Otherwise the shell reads the heredoc itself.
    if (onlyDoc) return [...shell, ins.heredocs[0].body];
    return [...shell, `${ins.args}\n${ins.heredocs.map((x) => `${x.body}${x.name}`).join('\n')}`];
  }
  return [...shell, ins.args];
}

function setEnv(rc: RunConfig, key: string, value: string): void {
  const env = (rc.Env ?? []).filter((e) => e.split('=', 1)[0] !== key);
  env.push(`${key}=${value}`);
  rc.Env = env;
}

/** Go duration (`30s`, `1m30s`, `500ms`) to nanoseconds. */
export function durationNs(flag: string, v: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let consumed = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    total += Number(m[1]) * { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2] as 's'];
    consumed = re.lastIndex;
  }
  if (v === '' || consumed !== v.length)
    throw invalid(`invalid value for --${flag}: time: invalid duration "${v}"`);
  return Math.round(total);
}

function healthcheck(ins: Instruction): Record<string, unknown> {
  const words = ins.args.trim();
  if (/^none$/i.test(words)) return { Test: ['NONE'] };
  const m = /^cmd\s+([\s\S]*)$/i.exec(words);
  if (!m) throw invalid(`Unknown type "${words.split(/\s+/)[0]}" in HEALTHCHECK (try CMD)`);
  const json = jsonForm(m[1]);
  const hc: Record<string, unknown> = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', m[1]] };
  for (const [flag, key] of [
    ['interval', 'Interval'],
    ['timeout', 'Timeout'],
    ['start-period', 'StartPeriod'],
    ['start-interval', 'StartInterval'],
  ] as const) {
    const v = flagValue(ins, flag);
    if (v !== undefined) hc[key] = durationNs(flag, v);
  }
  const retries = flagValue(ins, 'retries');
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries) || Number(retries) < 1) throw invalid('--retries must be at least 1');
    hc.Retries = Number(retries);
  }
  return hc;
}

/** Applies one config-only instruction; throws for any other keyword. */
export function applyConfigStep(
  ins: Instruction,
  ctx: ConfigStepContext,
): { comment: string; cmdSet: boolean } {
  const rc = ctx.config.config;
  const word = (w: string) => processWord(w, ctx.vars, ctx.escape);
  let cmdSet = ctx.cmdSet;
  const done = (comment: string) => ({ comment, cmdSet });
  switch (ins.keyword) {
    case 'ENV': {
      const pairs = keyValues(ins.args, ctx.vars, ctx.escape, { legacy: true, instruction: 'ENV' });
      for (const { key, value } of pairs) setEnv(rc, key, value ?? '');
      return done(`ENV ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`);
    }
    case 'LABEL': {
      const pairs = keyValues(ins.args, ctx.vars, ctx.escape, { legacy: true, instruction: 'LABEL' });
      rc.Labels = { ...(rc.Labels ?? {}) };
      for (const { key, value } of pairs) rc.Labels[key] = value ?? '';
      return done(`LABEL ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`);
    }
    case 'MAINTAINER':
      ctx.config.author = ins.args;
      return done(`MAINTAINER ${ins.args}`);
    case 'USER':
      rc.User = word(ins.args);
      return done(`USER ${rc.User}`);
    case 'STOPSIGNAL':
      rc.StopSignal = word(ins.args);
      return done(`STOPSIGNAL ${rc.StopSignal}`);
    case 'EXPOSE': {
      rc.ExposedPorts = { ...(rc.ExposedPorts ?? {}) };
      for (const p of splitWords(ins.args, ctx.escape).map(word)) {
        const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
        if (!m) throw invalid(`Invalid containerPort: ${p}`);
        const proto = (m[3] ?? 'tcp').toLowerCase();
        const end = m[2] ? Number(m[2]) : Number(m[1]);
        for (let n = Number(m[1]); n <= end; n++) rc.ExposedPorts[`${n}/${proto}`] = {};
      }
      return done(`EXPOSE ${Object.keys(rc.ExposedPorts).sort().join(' ')}`);
    }
    case 'VOLUME': {
      const vols = jsonForm(ins.args) ?? splitWords(ins.args, ctx.escape).map(word);
      rc.Volumes = { ...(rc.Volumes ?? {}) };
      for (const v of vols) {
        if (!v.trim()) throw invalid('VOLUME specified can not be an empty string');
        rc.Volumes[v] = {};
      }
      return done(`VOLUME ${JSON.stringify(vols)}`);
    }
    case 'CMD':
      rc.Cmd = commandOf(ins, ctx.shell);
      cmdSet = true;
      return done(`CMD ${JSON.stringify(rc.Cmd)}`);
    case 'ENTRYPOINT': {
      rc.Entrypoint = jsonForm(ins.args) ?? (ins.args ? [...ctx.shell, ins.args] : null);
      // A new ENTRYPOINT drops the CMD the base image had, unless this stage set one.
      if (!cmdSet) rc.Cmd = null;
      return done(`ENTRYPOINT ${JSON.stringify(rc.Entrypoint)}`);
    }
    case 'SHELL': {
      const json = jsonForm(ins.args);
      if (!json || json.length === 0) throw invalid('SHELL requires the arguments to be in JSON form');
      rc.Shell = json;
      return done(`SHELL ${JSON.stringify(json)}`);
    }
    case 'HEALTHCHECK':
      rc.Healthcheck = healthcheck(ins);
      return done(`HEALTHCHECK ${JSON.stringify(rc.Healthcheck)}`);
    case 'ONBUILD': {
      const kw = ins.args.split(/\s+/, 1)[0];
      const trigger = `${kw.toUpperCase()} ${ins.args.slice(kw.length).trim()}`.trim();
      rc.OnBuild = [...(rc.OnBuild ?? []), trigger];
      return done(`ONBUILD ${trigger}`);
    }
    default:
      throw invalid(`dockerfile parse error on line ${ins.line}: unknown instruction: ${ins.keyword}`);
  }
}
