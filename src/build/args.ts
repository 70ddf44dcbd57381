/**
 * Build arguments: the values given with `--build-arg`, the meta ARGs (before the first FROM),
 * each stage's declared ARGs, which of them a step sees (ENV wins over ARG), and which given ones
 * no ARG consumed (Docker's warning).
 */
import { keyValues, type Vars, varsOf } from './shell-lex.js';

/** Build args every RUN may use without an ARG, kept out of the cache key and history (as Docker). */
export const PREDEFINED_ARGS = new Set([
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
]);

export class BuildArgs {
  /** Meta ARGs: usable in FROM lines, and as defaults of a stage's `ARG NAME` without a value. */
  readonly meta: Vars = new Map();
  private readonly used = new Set<string>();

  constructor(private readonly given: Record<string, string | null>) {}

  /** Marks an argument as consumed (no "not consumed" warning for it). */
  use(key: string): void {
    this.used.add(key);
  }

  /** A meta `ARG` line (before the first FROM). */
  declareMeta(args: string, escapeToken: string): void {
    for (const { key, value } of keyValues(args, this.meta, escapeToken, {
      legacy: false,
      keyOnly: true,
      instruction: 'ARG',
    })) {
      this.used.add(key);
      const given = this.given[key];
      if (given !== undefined && given !== null) this.meta.set(key, given);
      else if (value !== undefined) this.meta.set(key, value);
    }
  }

  /**
   * A stage's `ARG` line into `declared`: the `--build-arg` value wins, then the default, then the
   * meta ARG of the same name. Returns the pairs as written (for the history comment).
   */
  declare(
    args: string,
    vars: Vars,
    escapeToken: string,
    declared: Map<string, string | undefined>,
  ): { key: string; value: string | undefined }[] {
    const pairs = keyValues(args, vars, escapeToken, { legacy: false, keyOnly: true, instruction: 'ARG' });
    for (const { key, value } of pairs) {
      this.used.add(key);
      const given = this.given[key];
      declared.set(key, given !== undefined && given !== null ? given : (value ?? this.meta.get(key)));
    }
    return pairs;
  }

  /** What a step sees: declared ARGs with a value and given proxy args, unless ENV sets the name. */
  visible(env: string[], declared: Map<string, string | undefined>): [string, string][] {
    const envKeys = new Set(env.map((e) => e.split('=', 1)[0]));
    const out: [string, string][] = [];
    for (const [k, v] of declared) if (v !== undefined && !envKeys.has(k)) out.push([k, v]);
    for (const k of PREDEFINED_ARGS) {
      const v = this.given[k];
      if (typeof v === 'string' && !declared.has(k) && !envKeys.has(k)) out.push([k, v]);
    }
    return out;
  }

  /** Variables for expanding a step's words: ENV, then the visible ARGs. */
  vars(env: string[], declared: Map<string, string | undefined>): Vars {
    const m = varsOf(env);
    for (const [k, v] of this.visible(env, declared)) if (!m.has(k)) m.set(k, v);
    return m;
  }

  /** Given args no ARG consumed, sorted (predefined ones excepted). */
  unused(): string[] {
    return Object.keys(this.given)
      .filter((k) => !this.used.has(k) && !PREDEFINED_ARGS.has(k))
      .sort();
  }
}
