/**
 * A small command-line parser with the subset of commander's fluent API that berth uses
 * (`command`, `option`, `argument`, `action`, `passThroughOptions`, aliases), parsing the way
 * docker's pflag/cobra does: options anywhere unless pass-through (run/create/exec stop at the
 * first positional), `--flag=value`, combined short flags (`-it`), repeatable options, `--no-x`.
 * It exists because loading commander costs tens of milliseconds of start-up on every command.
 * Errors carry commander's wording, which main.ts turns into docker's.
 */

export class CommanderError extends Error {
  command?: Command;
  constructor(
    readonly exitCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Collector = (value: string, previous: any) => any;

export class Option {
  readonly short?: string;
  readonly long?: string;
  readonly takesValue: boolean;
  readonly negate: boolean;
  readonly attr: string;

  constructor(
    readonly flags: string,
    readonly desc: string,
    readonly collector?: Collector,
    readonly defaultValue?: unknown,
  ) {
    for (const part of flags.split(/[ ,|]+/)) {
      if (part.startsWith('--')) this.long = part;
      else if (part.startsWith('-')) this.short = part;
    }
    this.takesValue = /<[^>]+>|\[[^\]]+\]/.test(flags);
    this.negate = !!this.long?.startsWith('--no-');
    const base = (this.long ?? this.short ?? '').replace(/^--?(no-)?/, '');
    this.attr = base.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  }
}

export class Argument {
  readonly required: boolean;
  readonly variadic: boolean;
  private readonly n: string;

  constructor(spec: string) {
    this.required = spec.startsWith('<');
    this.variadic = spec.includes('...');
    this.n = spec.replace(/[<>[\].]/g, '');
  }

  name(): string {
    return this.n;
  }
}

type Action = (...args: any[]) => unknown;

export class Command {
  parent: Command | null = null;
  readonly commands: Command[] = [];
  readonly options: Option[] = [];
  readonly registeredArguments: Argument[] = [];
  private values: Record<string, unknown> = {};
  private aliasList: string[] = [];
  private desc = '';
  private usageText = '';
  private passThrough = false;
  private handler?: Action;

  constructor(private readonly commandName = '') {}

  name(): string {
    return this.commandName;
  }

  command(name: string): Command {
    const c = new Command(name);
    c.parent = this;
    this.commands.push(c);
    return c;
  }

  description(): string;
  description(d: string): this;
  description(d?: string): string | this {
    if (d === undefined) return this.desc;
    this.desc = d;
    return this;
  }

  usage(): string;
  usage(u: string): this;
  usage(u?: string): string | this {
    if (u === undefined) return this.usageText;
    this.usageText = u;
    return this;
  }

  aliases(): string[];
  aliases(a: string[]): this;
  aliases(a?: string[]): string[] | this {
    if (a === undefined) return this.aliasList;
    this.aliasList = a;
    return this;
  }

  option(flags: string, desc = '', fnOrDefault?: Collector | unknown, def?: unknown): this {
    const o =
      typeof fnOrDefault === 'function'
        ? new Option(flags, desc, fnOrDefault as Collector, def)
        : new Option(flags, desc, undefined, fnOrDefault);
    this.options.push(o);
    if (o.defaultValue !== undefined) this.values[o.attr] = o.defaultValue;
    return this;
  }

  argument(spec: string): this {
    this.registeredArguments.push(new Argument(spec));
    return this;
  }

  action(fn: Action): this {
    this.handler = fn;
    return this;
  }

  passThroughOptions(): this {
    this.passThrough = true;
    return this;
  }

  opts(): Record<string, any> {
    return this.values;
  }

  private findLong(name: string): Option | undefined {
    return this.options.find((o) => o.long === name);
  }

  private findShort(name: string): Option | undefined {
    return this.options.find((o) => o.short === name);
  }

  private fail(code: string, message: string, exitCode = 1): never {
    const e = new CommanderError(exitCode, code, message);
    e.command = this;
    throw e;
  }

  private set(o: Option, value: string | boolean): void {
    if (!o.takesValue) {
      this.values[o.attr] = o.negate ? !value : value;
      return;
    }
    this.values[o.attr] = o.collector
      ? o.collector(
          String(value),
          this.values[o.attr] === o.defaultValue ? o.defaultValue : this.values[o.attr],
        )
      : value;
  }

  /** Parses `args` for this command; dispatches to a subcommand or runs the action. */
  async parseAsync(args: string[], _opts?: { from: 'user' }): Promise<void> {
    const positionals: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '--') {
        positionals.push(...args.slice(i + 1));
        break;
      }
      if (a === '--help' && !this.findLong('--help')) {
        process.stdout.write(this.helpText());
        throw new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)');
      }
      if (a.startsWith('--') && a.length > 2) {
        const eq = a.indexOf('=');
        const name = eq < 0 ? a : a.slice(0, eq);
        const o = this.findLong(name);
        if (!o) this.fail('commander.unknownOption', `error: unknown option '${a}'`);
        if (o.takesValue) {
          let v: string | undefined = eq < 0 ? undefined : a.slice(eq + 1);
          if (v === undefined) {
            if (i + 1 >= args.length)
              this.fail('commander.optionMissingArgument', `error: option '${o.flags}' argument missing`);
            v = args[++i]!;
          }
          this.set(o, v);
        } else if (eq >= 0) {
          const v = a.slice(eq + 1).toLowerCase();
          if (!['true', 'false', '1', '0'].includes(v))
            this.fail(
              'commander.invalidArgument',
              `error: invalid argument "${a.slice(eq + 1)}" for "${name}" flag`,
            );
          this.set(o, v === 'true' || v === '1');
        } else this.set(o, true);
        continue;
      }
      if (a.startsWith('-') && a.length > 1 && !(positionals.length && this.passThrough)) {
        if (a === '-h' && !this.findShort('-h')) {
          process.stdout.write(this.helpText());
          throw new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)');
        }
        for (let j = 1; j < a.length; j++) {
          const o = this.findShort(`-${a[j]}`);
          if (!o) this.fail('commander.unknownOption', `error: unknown option '-${a[j]}' in ${a}`);
          if (o.takesValue) {
            let v = a.slice(j + 1);
            if (v.startsWith('=')) v = v.slice(1);
            if (!v) {
              if (i + 1 >= args.length)
                this.fail('commander.optionMissingArgument', `error: option '${o.flags}' argument missing`);
              v = args[++i]!;
            }
            this.set(o, v);
            break;
          }
          this.set(o, true);
        }
        continue;
      }
      // a positional
      if (this.commands.length && positionals.length === 0) {
        const sub = this.commands.find((c) => c.name() === a || c.aliasList.includes(a));
        if (!sub) this.fail('commander.unknownCommand', `error: unknown command '${a}'`);
        await sub.parseAsync(args.slice(i + 1));
        return;
      }
      positionals.push(a);
      if (this.passThrough) {
        positionals.push(...args.slice(i + 1));
        break;
      }
    }
    if (!this.handler) {
      if (this.commands.length) {
        process.stdout.write(this.helpText());
        throw new CommanderError(0, 'commander.help', '(outputHelp)');
      }
      return;
    }
    const values: unknown[] = [];
    const regs = this.registeredArguments;
    let k = 0;
    for (const r of regs) {
      if (r.variadic) {
        const rest = positionals.slice(k);
        if (r.required && rest.length === 0)
          this.fail('commander.missingArgument', `error: missing required argument '${r.name()}'`);
        values.push(rest);
        k = positionals.length;
      } else {
        if (k >= positionals.length) {
          if (r.required)
            this.fail('commander.missingArgument', `error: missing required argument '${r.name()}'`);
          values.push(undefined);
        } else values.push(positionals[k++]);
      }
    }
    if (k < positionals.length)
      this.fail('commander.excessArguments', `error: too many arguments for '${this.name()}'`);
    for (let c: Command | null = this; c; c = c.parent) c.onAction?.(this);
    await this.handler(...values, this.values, this);
  }

  /** Called (root first is not guaranteed) before the action of `cmd` runs. */
  onAction?: (cmd: Command) => void;

  /** docker-style help. */
  helpText(): string {
    const path: string[] = [];
    for (let c: Command | null = this; c; c = c.parent) path.unshift(c.name());
    let usage = this.usageText;
    if (!usage) {
      const parts: string[] = [];
      if (this.options.length) parts.push('[OPTIONS]');
      for (const a of this.registeredArguments) {
        const n = a.name().toUpperCase();
        parts.push(a.variadic ? (a.required ? `${n} [${n}...]` : `[${n}...]`) : a.required ? n : `[${n}]`);
      }
      if (this.commands.length) parts.push('COMMAND');
      usage = parts.join(' ');
    }
    let out = `Usage:  ${path.join(' ')} ${usage}\n\n${this.desc}\n`;
    if (this.aliasList.length)
      out += `\nAliases:\n  ${[this.commandName, ...this.aliasList].map((a) => [...path.slice(0, -1), a].join(' ')).join(', ')}\n`;
    if (this.commands.length) {
      out += '\nCommands:\n';
      const w = Math.max(11, ...this.commands.map((c) => c.name().length));
      for (const c of [...this.commands].sort((x, y) => (x.name() < y.name() ? -1 : 1)))
        out += `  ${c.name().padEnd(w)}  ${c.desc}\n`;
    }
    if (this.options.length) {
      out += '\nOptions:\n';
      const label = (o: Option) => {
        const value = /<([^>]+)>/.exec(o.flags)?.[1];
        const l = o.short ? `${o.short}, ${o.long ?? ''}` : `    ${o.long}`;
        return value ? `${l} ${value}` : l;
      };
      const w = Math.max(...this.options.map((o) => label(o).length));
      for (const o of this.options)
        out += `  ${label(o).padEnd(w)}   ${o.desc}${o.defaultValue !== undefined && typeof o.defaultValue !== 'object' ? ` (default "${o.defaultValue}")` : ''}\n`;
    }
    if (this.commands.length)
      out += `\nRun '${path.join(' ')} COMMAND --help' for more information on a command.\n`;
    return out;
  }

  outputHelp(): void {
    process.stdout.write(this.helpText());
  }
}
