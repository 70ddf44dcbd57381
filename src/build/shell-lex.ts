/**
 * The Dockerfile's own word rules (not a shell): splitting an instruction's arguments into words
 * with quotes kept, then per word quote removal and `$VAR` / `${VAR}` expansion with the
 * modifiers Docker knows (`:-` `-` `:+` `+` `:?` `?`). The escape token is `\` or, after the
 * `# escape=` directive, a backtick.
 */
import { invalid } from '../util/errors.js';

export type Vars = Map<string, string>;

/** `KEY=VALUE` strings (later ones win) to a lookup map. */
export function varsOf(...lists: string[][]): Vars {
  const m: Vars = new Map();
  for (const list of lists)
    for (const e of list) {
      const i = e.indexOf('=');
      if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
      else if (i < 0) m.set(e, '');
    }
  return m;
}

/** Splits on unquoted whitespace; quotes and escapes stay in the words for `processWord`. */
export function splitWords(text: string, escapeToken = '\\'): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      cur += ch;
      if (ch === escapeToken && quote === '"' && i + 1 < text.length) cur += text[++i];
      else if (ch === quote) quote = '';
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    cur += ch;
    if (ch === escapeToken && i + 1 < text.length) cur += text[++i];
    else if (ch === '"' || ch === "'") quote = ch;
  }
  if (inWord) words.push(cur);
  return words;
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/** Quote removal and variable expansion of one word, as Docker's `ProcessWord`. */
export function processWord(word: string, vars: Vars, escapeToken = '\\', used?: Set<string>): string {
  const lx = new Lexer(word, vars, escapeToken, used);
  return lx.word('');
}

class Lexer {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly vars: Vars,
    private readonly esc: string,
    private readonly used?: Set<string>,
  ) {}

  /** Reads until `stop` (unquoted) or the end. */
  word(stop: string): string {
    let out = '';
    while (this.i < this.s.length) {
      const ch = this.s[this.i];
      if (stop && ch === stop) return out;
      this.i++;
      if (ch === this.esc) {
        if (this.i < this.s.length) out += this.s[this.i++];
      } else if (ch === "'") {
        const end = this.s.indexOf("'", this.i);
        if (end < 0) throw invalid(`unexpected end of statement while looking for matching single-quote`);
        out += this.s.slice(this.i, end);
        this.i = end + 1;
      } else if (ch === '"') {
        out += this.doubleQuoted();
      } else if (ch === '$') {
        out += this.dollar();
      } else out += ch;
    }
    return out;
  }

  private doubleQuoted(): string {
    let out = '';
    while (this.i < this.s.length) {
      const ch = this.s[this.i++];
      if (ch === '"') return out;
      if (ch === '$') out += this.dollar();
      else if (ch === this.esc && this.i < this.s.length) {
        const next = this.s[this.i++];
        out += next === '"' || next === '$' || next === this.esc ? next : ch + next;
      } else out += ch;
    }
    throw invalid('unexpected end of statement while looking for matching double-quote');
  }

  private lookup(name: string): string | undefined {
    this.used?.add(name);
    return this.vars.get(name);
  }

  private dollar(): string {
    const ch = this.s[this.i];
    if (ch === '{') {
      this.i++;
      let name = '';
      while (this.i < this.s.length && NAME_CHAR.test(this.s[this.i])) name += this.s[this.i++];
      if (!name) throw invalid(`bad substitution`);
      if (this.s[this.i] === '}') {
        this.i++;
        return this.lookup(name) ?? '';
      }
      let mod = this.s[this.i++];
      if (mod === ':') mod += this.s[this.i++] ?? '';
      if (![':-', '-', ':+', '+', ':?', '?'].includes(mod))
        throw invalid(`unsupported modifier (${mod}) in substitution`);
      const arg = this.word('}');
      if (this.s[this.i] !== '}') throw invalid(`missing '}' in substitution`);
      this.i++;
      const v = this.lookup(name);
      const set = mod.startsWith(':') ? v !== undefined && v !== '' : v !== undefined;
      switch (mod) {
        case ':-':
        case '-':
          return set ? v! : arg;
        case ':+':
        case '+':
          return set ? arg : '';
        default:
          if (!set) throw invalid(`${name}: ${arg || 'is not allowed to be unset'}`);
          return v!;
      }
    }
    if (ch !== undefined && NAME_START.test(ch)) {
      let name = '';
      while (this.i < this.s.length && NAME_CHAR.test(this.s[this.i])) name += this.s[this.i++];
      return this.lookup(name) ?? '';
    }
    return '$';
  }
}

/** `KEY=VALUE …` pairs (ENV, LABEL, ARG) or the legacy `KEY VALUE` form when `legacy` allows it. */
export function keyValues(
  text: string,
  vars: Vars,
  escapeToken: string,
  opts: { legacy: boolean; keyOnly?: boolean; instruction: string },
): { key: string; value: string | undefined }[] {
  const words = splitWords(text, escapeToken);
  if (words.length === 0) throw invalid(`${opts.instruction} requires at least one argument`);
  if (opts.legacy && !words[0].includes('=')) {
    const rest = text.trim().slice(words[0].length).trim();
    if (!rest) throw invalid(`${opts.instruction} requires at least one argument`);
    return [{ key: processWord(words[0], vars, escapeToken), value: processWord(rest, vars, escapeToken) }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) {
      if (opts.keyOnly) return { key: processWord(w, vars, escapeToken), value: undefined };
      throw invalid(`${opts.instruction} names can not be blank`);
    }
    const key = processWord(w.slice(0, eq), vars, escapeToken);
    if (!key) throw invalid(`${opts.instruction} names can not be blank`);
    return { key, value: processWord(w.slice(eq + 1), vars, escapeToken) };
  });
}
