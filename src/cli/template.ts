/**
 * A subset of Go's text/template, as docker's `--format` uses it: `{{.Field}}`, nested fields,
 * `{{.}}`, pipes (`{{.X | json}}`), functions (json, join, split, lower, upper, title, pad,
 * truncate, len, index, print, printf, println, eq, ne, lt, le, gt, ge, not, and, or), `if`/`else`/
 * `range`/`with`/`end`, variables (`$`, `$x := …`, `range $k, $v := …`), and `{{-`/`-}}` trims.
 * Values print as Go's fmt does for decoded JSON (maps as `map[k:v]`, lists as `[a b]`).
 */

export class TemplateError extends Error {}

type Node =
  | { t: 'text'; s: string }
  | { t: 'action'; p: Pipeline }
  | { t: 'if' | 'with'; p: Pipeline; body: Node[]; alt?: Node[] }
  | { t: 'range'; p: Pipeline; body: Node[]; alt?: Node[] };

interface Pipeline {
  decl: string[];
  assign: boolean;
  cmds: Operand[][];
}

type Operand =
  | { k: 'field'; base: 'dot' | string; path: string[] }
  | { k: 'ident'; name: string }
  | { k: 'lit'; v: unknown }
  | { k: 'sub'; p: Pipeline };

export type TemplateFuncs = Record<string, (...args: any[]) => unknown>;

/** Marks a value whose `{{json}}` must escape HTML characters (docker's formatter contexts do). */
export const ESCAPE_HTML = Symbol('escapeHtml');

// ---------- lexing ----------

interface Tok {
  k: 'field' | 'var' | 'ident' | 'str' | 'num' | 'pipe' | 'lp' | 'rp' | 'decl' | 'assign' | 'comma';
  v: string;
}

function lexAction(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '|') {
      toks.push({ k: 'pipe', v: c });
      i++;
    } else if (c === '(') {
      toks.push({ k: 'lp', v: c });
      i++;
    } else if (c === ')') {
      toks.push({ k: 'rp', v: c });
      i++;
    } else if (c === ',') {
      toks.push({ k: 'comma', v: c });
      i++;
    } else if (c === ':' && src[i + 1] === '=') {
      toks.push({ k: 'decl', v: ':=' });
      i += 2;
    } else if (c === '=') {
      toks.push({ k: 'assign', v: '=' });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) throw new TemplateError('unterminated quoted string');
      toks.push({ k: 'str', v: JSON.parse(src.slice(i, j + 1)) as string });
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError('unterminated raw quoted string');
      toks.push({ k: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
    } else if (c === '.' || c === '$') {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_.]/.test(src[j]!)) j++;
      toks.push({ k: c === '.' ? 'field' : 'var', v: src.slice(i, j) });
      i = j;
    } else if (/[0-9-]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[0-9.eE+xXa-fA-F]/.test(src[j]!)) j++;
      toks.push({ k: 'num', v: src.slice(i, j) });
      i = j;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      const word = src.slice(i, j);
      // `.Field` chained onto an identifier result is rare; not supported.
      toks.push({ k: 'ident', v: word });
      i = j;
    } else throw new TemplateError(`unexpected "${c}" in command`);
  }
  return toks;
}

// ---------- parsing ----------

export class Template {
  private readonly root: Node[];

  constructor(
    readonly source: string,
    private readonly funcs: TemplateFuncs = {},
  ) {
    this.root = parse(source);
  }

  execute(data: unknown, funcs: TemplateFuncs = {}): string {
    const out: string[] = [];
    const all: TemplateFuncs = { ...BASIC_FUNCS, ...this.funcs, ...funcs };
    runNodes(this.root, data, [{ $: data }], all, out);
    return out.join('');
  }
}

function parse(src: string): Node[] {
  // Split into text and actions, applying trim markers.
  const pieces: ({ text: string } | { action: string })[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) pieces.push({ text });
      break;
    }
    let inner = src.slice(open + 2);
    if (/^- /.test(inner) || inner.startsWith('-\t') || inner.startsWith('-\n')) {
      text = text.replace(/\s+$/, '');
      inner = inner.slice(1);
    }
    if (text) pieces.push({ text });
    // find the closing }} outside of quotes
    let j = 0;
    let q: string | null = null;
    for (; j < inner.length; j++) {
      const c = inner[j];
      if (q) {
        if (c === '\\' && q === '"') j++;
        else if (c === q) q = null;
      } else if (c === '"' || c === '`') q = c;
      else if (c === '}' && inner[j + 1] === '}') break;
    }
    if (j >= inner.length) throw new TemplateError('unclosed action');
    let body = inner.slice(0, j);
    const consumedBefore = src.length - inner.length;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      trimNext = true;
    }
    pieces.push({ action: body.trim() });
    i = consumedBefore + j + 2;
  }

  let pos = 0;
  type ListEnd = { nodes: Node[]; end: string; chain?: string };
  const parseBlock = (kw: 'if' | 'with' | 'range', rest: string): Node => {
    const pl = parsePipeline(lexAction(rest));
    const body = parseList(['else', 'end']);
    let alt: Node[] | undefined;
    if (body.end === 'else') {
      if (body.chain) {
        // {{else if …}} / {{else with …}}: a nested block that consumes the shared {{end}}
        const ckw = /^(\w+)\b/.exec(body.chain)?.[1];
        if (ckw !== 'if' && ckw !== 'with') throw new TemplateError(`unexpected {{else ${body.chain}}}`);
        alt = [parseBlock(ckw, body.chain.slice(ckw.length))];
      } else alt = parseList(['end']).nodes;
    }
    return { t: kw, p: pl, body: body.nodes, alt };
  };
  const parseList = (terminators: string[]): ListEnd => {
    const nodes: Node[] = [];
    while (pos < pieces.length) {
      const p = pieces[pos++]!;
      if ('text' in p) {
        nodes.push({ t: 'text', s: p.text });
        continue;
      }
      const a = p.action;
      if (a.startsWith('/*')) continue;
      const kw = /^(\w+)\b/.exec(a)?.[1];
      if (kw === 'end' || kw === 'else') {
        if (!terminators.includes(kw)) throw new TemplateError(`unexpected {{${kw}}}`);
        const chain = kw === 'else' ? a.slice(4).trim() : '';
        return { nodes, end: kw, chain: chain || undefined };
      }
      if (kw === 'if' || kw === 'with' || kw === 'range') {
        nodes.push(parseBlock(kw, a.slice(kw.length)));
        continue;
      }
      if (kw === 'template' || kw === 'define' || kw === 'block')
        throw new TemplateError(`{{${kw}}} is not supported`);
      nodes.push({ t: 'action', p: parsePipeline(lexAction(a)) });
    }
    if (terminators.length) throw new TemplateError('unexpected EOF');
    return { nodes, end: '' };
  };
  return parseList([]).nodes;
}

function parsePipeline(toks: Tok[]): Pipeline {
  let k = 0;
  const decl: string[] = [];
  let assign = false;
  // $a := or $a, $b :=
  const save = k;
  while (toks[k]?.k === 'var') {
    decl.push(toks[k]!.v);
    k++;
    if (toks[k]?.k === 'comma') k++;
    else break;
  }
  if (decl.length && (toks[k]?.k === 'decl' || toks[k]?.k === 'assign')) {
    assign = toks[k]!.k === 'assign';
    k++;
  } else {
    decl.length = 0;
    k = save;
  }
  const rest = toks.slice(k);
  const pl = parseCmds(rest);
  return { decl, assign, cmds: pl };
}

function parseCmds(toks: Tok[]): Operand[][] {
  const cmds: Operand[][] = [];
  let cur: Operand[] = [];
  let k = 0;
  while (k < toks.length) {
    const t = toks[k]!;
    if (t.k === 'pipe') {
      if (!cur.length) throw new TemplateError('missing command before |');
      cmds.push(cur);
      cur = [];
      k++;
      continue;
    }
    if (t.k === 'lp') {
      let depth = 1;
      let j = k + 1;
      for (; j < toks.length; j++) {
        if (toks[j]!.k === 'lp') depth++;
        else if (toks[j]!.k === 'rp' && --depth === 0) break;
      }
      if (j >= toks.length) throw new TemplateError('unclosed left paren');
      cur.push({ k: 'sub', p: { decl: [], assign: false, cmds: parseCmds(toks.slice(k + 1, j)) } });
      k = j + 1;
      continue;
    }
    cur.push(operand(t));
    k++;
  }
  if (cur.length) cmds.push(cur);
  if (!cmds.length) throw new TemplateError('missing value for command');
  return cmds;
}

function operand(t: Tok): Operand {
  switch (t.k) {
    case 'field':
      return { k: 'field', base: 'dot', path: t.v === '.' ? [] : t.v.slice(1).split('.') };
    case 'var': {
      const [name, ...path] = t.v.split('.');
      return { k: 'field', base: name!, path };
    }
    case 'str':
      return { k: 'lit', v: t.v };
    case 'num':
      return { k: 'lit', v: Number(t.v) };
    case 'ident':
      if (t.v === 'true' || t.v === 'false') return { k: 'lit', v: t.v === 'true' };
      if (t.v === 'nil') return { k: 'lit', v: null };
      return { k: 'ident', name: t.v };
    default:
      throw new TemplateError(`unexpected ${t.v} in operand`);
  }
}

// ---------- execution ----------

type Scope = Record<string, unknown>[];

function lookupVar(scope: Scope, name: string): unknown {
  for (let i = scope.length - 1; i >= 0; i--) if (name in scope[i]!) return scope[i]![name];
  throw new TemplateError(`undefined variable: ${name}`);
}

function field(v: unknown, name: string, args: unknown[]): unknown {
  if (v === null || v === undefined) return undefined;
  if (v instanceof Map) return v.get(name);
  if (typeof v === 'object') {
    let x = (v as Record<string, unknown>)[name];
    if (x === undefined && !(name in v)) {
      // Go field names differ from JSON names in case only (ID/Id, APIVersion/ApiVersion, NanoCPUs/NanoCpus).
      const lower = name.toLowerCase();
      const alt = Object.keys(v).find((k) => k.toLowerCase() === lower);
      if (alt !== undefined) x = (v as Record<string, unknown>)[alt];
    }
    if (typeof x === 'function') return (x as (...a: unknown[]) => unknown).apply(v, args);
    return x;
  }
  throw new TemplateError(`can't evaluate field ${name} in type ${typeof v}`);
}

function evalOperand(
  op: Operand,
  dot: unknown,
  scope: Scope,
  funcs: TemplateFuncs,
  args: unknown[],
  final: unknown[],
): unknown {
  switch (op.k) {
    case 'lit':
      return op.v;
    case 'sub':
      return evalPipeline(op.p, dot, scope, funcs);
    case 'field': {
      let v = op.base === 'dot' ? dot : lookupVar(scope, op.base);
      op.path.forEach((name, i) => {
        v = field(v, name, i === op.path.length - 1 ? [...args, ...final] : []);
      });
      return v;
    }
    case 'ident': {
      const f = funcs[op.name];
      if (!f) throw new TemplateError(`function "${op.name}" not defined`);
      return f(...args, ...final);
    }
  }
}

function evalCommand(
  cmd: Operand[],
  dot: unknown,
  scope: Scope,
  funcs: TemplateFuncs,
  prev: unknown[],
): unknown {
  const [head, ...rest] = cmd;
  const args = rest.map((o) => evalOperand(o, dot, scope, funcs, [], []));
  if (head!.k === 'ident' || (head!.k === 'field' && (args.length || prev.length)))
    return evalOperand(head!, dot, scope, funcs, args, prev);
  if (args.length) throw new TemplateError("can't give argument to non-function");
  return evalOperand(head!, dot, scope, funcs, [], prev);
}

function evalPipeline(p: Pipeline, dot: unknown, scope: Scope, funcs: TemplateFuncs): unknown {
  let prev: unknown[] = [];
  let v: unknown;
  for (const cmd of p.cmds) {
    v = evalCommand(cmd, dot, scope, funcs, prev);
    prev = [v];
  }
  if (p.decl.length === 1) {
    const name = p.decl[0]!;
    if (p.assign) {
      for (let i = scope.length - 1; i >= 0; i--)
        if (name in scope[i]!) {
          scope[i]![name] = v;
          return v;
        }
    }
    scope[scope.length - 1]![name] = v;
  }
  return v;
}

export function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0 || hasGetters(v);
  return true;
}

function hasGetters(v: unknown): boolean {
  return Object.getPrototypeOf(v) !== Object.prototype;
}

function runNodes(nodes: Node[], dot: unknown, scope: Scope, funcs: TemplateFuncs, out: string[]): void {
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        out.push(n.s);
        break;
      case 'action': {
        const v = evalPipeline(n.p, dot, scope, funcs);
        if (!n.p.decl.length) out.push(goPrint(v));
        break;
      }
      case 'if':
      case 'with': {
        scope.push({});
        const v = evalPipeline(n.p, dot, scope, funcs);
        if (truthy(v)) runNodes(n.body, n.t === 'with' ? v : dot, scope, funcs, out);
        else if (n.alt) runNodes(n.alt, dot, scope, funcs, out);
        scope.pop();
        break;
      }
      case 'range': {
        scope.push({});
        const decl = n.p.decl;
        const v = evalPipeline({ ...n.p, decl: [] }, dot, scope, funcs);
        const entries: [unknown, unknown][] = [];
        if (Array.isArray(v)) for (const [i, x] of v.entries()) entries.push([i, x]);
        else if (v instanceof Map) for (const k of [...v.keys()].sort()) entries.push([k, v.get(k)]);
        else if (v && typeof v === 'object')
          for (const k of Object.keys(v).sort()) entries.push([k, (v as Record<string, unknown>)[k]]);
        else if (typeof v === 'number') for (let i = 0; i < v; i++) entries.push([i, i]);
        else if (v !== undefined && v !== null)
          throw new TemplateError(`range can't iterate over ${goPrint(v)}`);
        if (!entries.length) {
          if (n.alt) runNodes(n.alt, dot, scope, funcs, out);
        } else
          for (const [k, x] of entries) {
            const s: Record<string, unknown> = {};
            if (decl.length === 1) s[decl[0]!] = x;
            else if (decl.length === 2) {
              s[decl[0]!] = k;
              s[decl[1]!] = x;
            }
            scope.push(s);
            runNodes(n.body, x, scope, funcs, out);
            scope.pop();
          }
        scope.pop();
        break;
      }
    }
  }
}

// ---------- printing as Go's fmt does ----------

export function goPrint(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goNumber(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(goPrintInner).join(' ')}]`;
  if (v instanceof Map)
    return `map[${[...v.keys()]
      .sort()
      .map((k) => `${k}:${goPrintInner(v.get(k))}`)
      .join(' ')}]`;
  if (typeof v === 'object') {
    const s = (v as { toString?: () => string }).toString;
    if (s && s !== Object.prototype.toString) return String(v);
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goPrintInner((v as Record<string, unknown>)[k])}`)
      .join(' ')}]`;
  }
  return String(v);
}

function goPrintInner(v: unknown): string {
  return v === undefined ? '<nil>' : goPrint(v);
}

export function goNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  // Go's %v for float64 is strconv 'g' with the shortest representation, exponent when < 1e-4 or ≥ 1e21
  const s = String(n);
  return s.replace(/e\+?(-?)(\d)$/, 'e$1+0$2').replace('e+-', 'e-');
}

/** Go's encoding/json output: Go escapes U+2028/2029 always and `<>&` unless told not to. */
export function goJson(v: unknown, escapeHtml = false): string {
  let s = JSON.stringify(v === undefined ? null : v, (_k, x) =>
    x instanceof Map ? Object.fromEntries(x) : x,
  );
  if (s === undefined) s = 'null';
  s = s.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  if (escapeHtml) s = s.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
  return s;
}

function toStr(v: unknown): string {
  return typeof v === 'string' ? v : goPrint(v);
}

function sprintf(fmt: string, args: unknown[]): string {
  let i = 0;
  return fmt.replace(
    /%([-+# 0]*)(\d*)(?:\.(\d+))?([vsdqfxXt%])/g,
    (_m, flags: string, width: string, prec: string, verb: string) => {
      if (verb === '%') return '%';
      const a = args[i++];
      let s: string;
      switch (verb) {
        case 'd':
          s = String(Math.trunc(Number(a)));
          break;
        case 'f':
          s = Number(a).toFixed(prec ? Number(prec) : 6);
          break;
        case 'q':
          s = goQuote(toStr(a));
          break;
        case 'x':
          s = typeof a === 'number' ? a.toString(16) : Buffer.from(toStr(a)).toString('hex');
          break;
        case 'X':
          s = (typeof a === 'number' ? a.toString(16) : Buffer.from(toStr(a)).toString('hex')).toUpperCase();
          break;
        default:
          s = toStr(a);
          if (prec && verb === 's') s = s.slice(0, Number(prec));
      }
      if (width) {
        const w = Number(width);
        s = flags.includes('-')
          ? s.padEnd(w)
          : s.padStart(w, flags.includes('0') && verb !== 's' ? '0' : ' ');
      }
      return s;
    },
  );
}

/** Go's strconv.Quote. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + '"';
}

function goEq(a: unknown, b: unknown): boolean {
  const x = a === undefined ? null : a;
  const y = b === undefined ? null : b;
  if (x === null || y === null) return x === y;
  return x === y;
}

function cmp(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const sa = toStr(a);
  const sb = toStr(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

export const BASIC_FUNCS: TemplateFuncs = {
  json: (v: unknown) =>
    goJson(
      v,
      typeof v === 'object' && v !== null && (v as { [ESCAPE_HTML]?: boolean })[ESCAPE_HTML] === true,
    ),
  split: (s: unknown, sep: unknown) => toStr(s).split(toStr(sep)),
  join: (list: unknown, sep: unknown) =>
    Array.isArray(list) ? list.map(toStr).join(toStr(sep)) : toStr(list),
  title: (s: unknown) =>
    toStr(s).replace(/(^|[^A-Za-z0-9_'])([a-z])/g, (_m, p: string, c: string) => p + c.toUpperCase()),
  lower: (s: unknown) => toStr(s).toLowerCase(),
  upper: (s: unknown) => toStr(s).toUpperCase(),
  pad: (s: unknown, pre: unknown, suf: unknown) => {
    const x = toStr(s);
    return x === '' ? x : ' '.repeat(Number(pre)) + x + ' '.repeat(Number(suf));
  },
  truncate: (s: unknown, n: unknown) => {
    const x = toStr(s);
    return x.length < Number(n) ? x : x.slice(0, Number(n));
  },
  len: (v: unknown) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (v instanceof Map) return v.size;
    if (v && typeof v === 'object') return Object.keys(v).length;
    throw new TemplateError(`len of ${goPrint(v)}`);
  },
  index: (v: unknown, ...keys: unknown[]) => {
    let x = v;
    for (const k of keys) {
      if (x === null || x === undefined) throw new TemplateError('index of untyped nil');
      if (Array.isArray(x)) {
        const i = Number(k);
        if (i < 0 || i >= x.length) throw new TemplateError(`index out of range: ${i}`);
        x = x[i];
      } else if (x instanceof Map) x = x.get(k);
      else if (typeof x === 'object') {
        x = (x as Record<string, unknown>)[String(k)];
        if (x === undefined) x = ''; // a missing map key yields the zero value
      } else throw new TemplateError(`can't index item of type ${typeof x}`);
    }
    return x;
  },
  print: (...a: unknown[]) => a.map(toStr).join(''),
  println: (...a: unknown[]) => a.map(toStr).join(' ') + '\n',
  printf: (f: unknown, ...a: unknown[]) => sprintf(toStr(f), a),
  eq: (a: unknown, ...bs: unknown[]) => bs.some((b) => goEq(a, b)),
  ne: (a: unknown, b: unknown) => !goEq(a, b),
  lt: (a: unknown, b: unknown) => cmp(a, b) < 0,
  le: (a: unknown, b: unknown) => cmp(a, b) <= 0,
  gt: (a: unknown, b: unknown) => cmp(a, b) > 0,
  ge: (a: unknown, b: unknown) => cmp(a, b) >= 0,
  not: (a: unknown) => !truthy(a),
  and: (...a: unknown[]) => {
    for (const x of a) if (!truthy(x)) return x;
    return a[a.length - 1];
  },
  or: (...a: unknown[]) => {
    for (const x of a) if (truthy(x)) return x;
    return a[a.length - 1];
  },
};

/** Functions used when rendering a table header: they leave the header text as it is. */
export const HEADER_FUNCS: TemplateFuncs = {
  json: (v: unknown) => v,
  split: (v: unknown) => v,
  join: (v: unknown) => v,
  title: (v: unknown) => v,
  lower: (v: unknown) => v,
  upper: (v: unknown) => v,
  truncate: (v: unknown) => v,
};
