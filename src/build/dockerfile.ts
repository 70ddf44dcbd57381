/**
 * The Dockerfile front end: dockerfile-ast gives the structure (directives, continuations,
 * comments, flags, ONBUILD triggers); this module turns it into stages of instructions and
 * reports errors worded as Docker's (`dockerfile parse error on line 3: unknown instruction: FORM`).
 * Values are interpreted later (shell-lex.ts), because ARG and ENV change them step by step.
 */
import { createRequire } from 'node:module';
import type { Instruction as AstInstruction, DockerfileParser as Parser } from 'dockerfile-ast';
import { invalid } from '../util/errors.js';
import { processWord, splitWords, type Vars } from './shell-lex.js';

export const KNOWN = new Set([
  'FROM',
  'RUN',
  'CMD',
  'LABEL',
  'MAINTAINER',
  'EXPOSE',
  'ENV',
  'ADD',
  'COPY',
  'ENTRYPOINT',
  'VOLUME',
  'USER',
  'WORKDIR',
  'ARG',
  'ONBUILD',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
]);

export interface Flag {
  name: string;
  value: string | undefined;
}

export interface Heredoc {
  name: string;
  body: string;
}

export interface Instruction {
  keyword: string; // upper case
  line: number; // 1-based, where the instruction starts
  /** Arguments with continuations joined and flags removed (heredoc bodies excluded). */
  args: string;
  flags: Flag[];
  /** As Docker prints it in `Step n/m : …`. */
  text: string;
  heredocs: Heredoc[];
}

export interface Stage {
  index: number;
  name?: string; // lower case, as Docker compares stage names
  /** The FROM argument before expansion. */
  base: string;
  from: Instruction;
  instructions: Instruction[];
}

export interface Dockerfile {
  escape: string;
  metaArgs: Instruction[];
  stages: Stage[];
  syntax?: string;
}

const parseError = (line: number, msg: string) => invalid(`dockerfile parse error on line ${line}: ${msg}`);

export function flagValue(ins: Instruction, name: string): string | undefined {
  let v: string | undefined;
  for (const f of ins.flags) if (f.name === name) v = f.value ?? '';
  return v;
}

export function flagValues(ins: Instruction, name: string): string[] {
  return ins.flags.filter((f) => f.name === name).map((f) => f.value ?? '');
}

/** Exec (JSON) form of RUN/CMD/ENTRYPOINT/SHELL/VOLUME/COPY, or undefined for shell form. */
export function jsonForm(args: string): string[] | undefined {
  const t = args.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(t) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: Docker then treats it as shell form
  }
  return undefined;
}

/** Splits `<<EOF` heredocs off an instruction's arguments (the command line stays in `args`). */
function heredocsOf(args: string): { args: string; heredocs: Heredoc[] } {
  const nl = args.indexOf('\n');
  if (!/<<-?["']?[A-Za-z_][A-Za-z0-9_]*["']?/.test(args) || nl < 0) return { args, heredocs: [] };
  const first = args.slice(0, nl);
  const lines = args.slice(nl + 1).split('\n');
  const heredocs: Heredoc[] = [];
  const re = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;
  let cmd = first;
  for (const m of first.matchAll(re)) {
    const body: string[] = [];
    while (lines.length) {
      const l = lines.shift()!;
      if ((m[1] ? l.replace(/^\t+/, '') : l) === m[3]) break;
      body.push(m[1] ? l.replace(/^\t+/, '') : l);
    }
    heredocs.push({ name: m[3], body: body.length ? `${body.join('\n')}\n` : '' });
    cmd = cmd.replace(m[0], `<<${m[3]}`);
  }
  return { args: cmd, heredocs };
}

/**
 * Joins continuation lines as Docker does: the escape token at a line's end is removed, the next
 * line follows as is, and comment or blank lines in between are dropped.
 */
function joinContinuations(raw: string, escapeToken: string): string {
  const lines = raw.split('\n');
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (i > 0 && (line.trim() === '' || /^\s*#/.test(line))) continue;
    const trimmed = line.replace(/\s+$/, '');
    out += trimmed.endsWith(escapeToken) ? trimmed.slice(0, -1) : line;
  }
  return out;
}

// Loaded at the first build, not at daemon start: the parser and its language-server types cost
// ≈ 10 MiB of RSS once imported, and most daemons build rarely.
let parserClass: typeof Parser | undefined;
function parser(): typeof Parser {
  parserClass ??= (createRequire(import.meta.url)('dockerfile-ast') as typeof import('dockerfile-ast')).DockerfileParser;
  return parserClass;
}

function toInstruction(ins: AstInstruction, escapeToken: string): Instruction {
  const keyword = ins.getKeyword().toUpperCase();
  const line = ins.getRange().start.line + 1;
  const withFlags = ins as AstInstruction & {
    getFlags?: () => { getName(): string; getValue(): string | null }[];
  };
  const flags: Flag[] = (withFlags.getFlags?.() ?? []).map((f) => ({
    name: f.getName(),
    value: f.getValue() ?? undefined,
  }));
  const raw = ins.getRawArgumentsContent() ?? '';
  const heredoc = /^[^\n]*<<-?["']?[A-Za-z_]/.test(raw);
  const content = heredoc ? raw : joinContinuations(raw, escapeToken);
  const { args, heredocs } = heredocsOf(content);
  const flagText = flags.map((f) => `--${f.name}${f.value === undefined ? '' : `=${f.value}`} `).join('');
  const text = `${ins.getInstruction()} ${flagText}${content}`.trim();
  return { keyword, line, args: args.trim(), flags, text, heredocs };
}

export function parseDockerfile(source: string, name = 'Dockerfile'): Dockerfile {
  if (source.trim() === '') throw invalid(`the Dockerfile (${name}) cannot be empty`);
  const ast = parser().parse(source);
  let escapeToken = '\\';
  let syntax: string | undefined;
  for (const d of ast.getDirectives()) {
    const n = d.getName()?.toLowerCase();
    if (n === 'escape') {
      const v = d.getValue() ?? '';
      if (v !== '\\' && v !== '`')
        throw parseError(d.getRange().start.line + 1, `invalid ESCAPE '${v}'. Must be \` or \\`);
      escapeToken = v;
    } else if (n === 'syntax') syntax = d.getValue() ?? undefined;
  }
  const out: Dockerfile = { escape: escapeToken, metaArgs: [], stages: [], syntax };
  for (const raw of ast.getInstructions()) {
    const ins = toInstruction(raw, escapeToken);
    if (!KNOWN.has(ins.keyword)) throw parseError(ins.line, `unknown instruction: ${ins.keyword}`);
    if (ins.keyword === 'ONBUILD') {
      const trigger = ins.args.split(/\s+/, 1)[0]?.toUpperCase() ?? '';
      if (trigger === '') throw parseError(ins.line, 'ONBUILD requires at least one argument');
      if (trigger === 'ONBUILD')
        throw parseError(ins.line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (trigger === 'FROM' || trigger === 'MAINTAINER')
        throw parseError(ins.line, `${trigger} isn't allowed as an ONBUILD trigger`);
      if (!KNOWN.has(trigger)) throw parseError(ins.line, `unknown instruction: ${trigger}`);
    }
    if (ins.keyword === 'FROM') {
      const words = splitWords(ins.args, escapeToken);
      if (words.length !== 1 && !(words.length === 3 && words[1].toLowerCase() === 'as'))
        throw parseError(ins.line, 'FROM requires either one or three arguments');
      const name = words.length === 3 ? words[2].toLowerCase() : undefined;
      if (name !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(name))
        throw parseError(
          ins.line,
          `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`,
        );
      out.stages.push({ index: out.stages.length, name, base: words[0], from: ins, instructions: [] });
      continue;
    }
    const stage = out.stages[out.stages.length - 1];
    if (!stage) {
      if (ins.keyword !== 'ARG') throw parseError(ins.line, 'no build stage in current context');
      out.metaArgs.push(ins);
      continue;
    }
    if (!ins.args && ins.heredocs.length === 0 && ins.keyword !== 'ONBUILD')
      throw parseError(ins.line, `${ins.keyword} requires at least one argument`);
    stage.instructions.push(ins);
  }
  if (out.stages.length === 0) throw invalid('dockerfile parse error: no build stage in current context');
  const seen = new Set<string>();
  for (const s of out.stages) {
    if (!s.name) continue;
    if (seen.has(s.name)) throw parseError(s.from.line, `duplicate stage name "${s.name}"`);
    seen.add(s.name);
  }
  return out;
}

/** One ONBUILD trigger (`RUN echo hi`) as an instruction of the child build. */
export function parseTrigger(text: string, line: number): Instruction {
  const df = parser().parse(`FROM scratch\n${text}\n`);
  const ins = df.getInstructions()[1];
  if (!ins) throw invalid(`invalid ONBUILD trigger: ${text}`);
  return { ...toInstruction(ins, '\\'), line };
}

/** The base of a stage after expanding the meta ARGs (`FROM ${BASE}`). */
export function stageBase(stage: Stage, vars: Vars, escapeToken: string): string {
  const base = processWord(stage.base, vars, escapeToken);
  if (!base) throw invalid(`base name (${stage.base}) should not be blank`);
  return base;
}

/** A stage named by `ref` (name or index) that comes before stage `before`, if any. */
export function stageBefore(df: Dockerfile, ref: string, before: number): number | undefined {
  const r = ref.toLowerCase();
  const i = /^\d+$/.test(r) ? Number(r) : df.stages.findIndex((s) => s.name === r);
  return i >= 0 && i < before ? i : undefined;
}

/** The stages `stage` needs (`FROM <stage>`, `COPY --from=<stage>`, `RUN --mount=…,from=<stage>`), by index. */
export function stageDependencies(df: Dockerfile, stage: Stage, metaVars: Vars): number[] {
  const refs = [processWord(stage.base, metaVars, df.escape)];
  for (const ins of stage.instructions) {
    const from = flagValue(ins, 'from');
    if (from !== undefined) refs.push(processWord(from, metaVars, df.escape));
    for (const m of flagValues(ins, 'mount')) {
      const fm = /(?:^|,)from=([^,]+)/.exec(m);
      if (fm) refs.push(fm[1]);
    }
  }
  const deps = new Set<number>();
  for (const ref of refs) {
    const dep = stageBefore(df, ref, stage.index);
    if (dep !== undefined) deps.add(dep);
  }
  return [...deps];
}

/** The target stage (`--target`, else the last) and the stages it needs, in file order; the others are skipped. */
export function selectStages(df: Dockerfile, target: string | undefined, metaVars: Vars): Stage[] {
  const stages = df.stages;
  let t = stages.length - 1;
  if (target) {
    t = stages.findIndex((s) => s.name === target.toLowerCase());
    if (t < 0) throw invalid(`target stage "${target}" could not be found`);
  }
  const needed = new Set<number>();
  const visit = (i: number) => {
    if (needed.has(i)) return;
    needed.add(i);
    for (const dep of stageDependencies(df, stages[i], metaVars)) visit(dep);
  };
  visit(t);
  return stages.filter((s) => needed.has(s.index)).map((s) => ({ ...s, instructions: [...s.instructions] }));
}
