/**
 * `berth build --progress=tty|auto` on a terminal: the classic lines (`Step n/m`, ` ---> …`) as
 * they come and, while a RUN step runs, a window with its last output lines, redrawn in place.
 * When the step ends the window goes (its output is not kept, as in BuildKit's tty view); when the
 * build fails during the step, the step's output is printed in full (its last lines, up to a cap).
 * Not on a terminal, `berth build` prints the plain lines instead.
 */

const WINDOW = 6;
/** Lines of a running step kept for a failure report. */
const KEEP = 1000;

/** What a terminal line shows of a line of output: no escapes, the part after the last `\r`. */
function visible(line: string): string {
  const noEsc = line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\t/g, '  ');
  const cr = noEsc.lastIndexOf('\r');
  return (cr >= 0 ? noEsc.slice(cr + 1) : noEsc).replace(/[\x00-\x1f\x7f]/g, '');
}

export class LiveBuildView {
  private pending = '';
  private running = false;
  private step: string[] = [];
  /** Window lines now on screen (to move back over). */
  private shown = 0;

  constructor(
    private readonly out: { write(s: string): unknown },
    private readonly columns: () => number,
  ) {}

  /** Text of `stream` messages. */
  write(text: string): void {
    this.pending += text;
    let nl = this.pending.indexOf('\n');
    let changed = false;
    while (nl >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      changed = this.line(line) || changed;
      nl = this.pending.indexOf('\n');
    }
    if (changed && this.running) this.redraw();
  }

  /** Something else is about to be printed (pull progress): the window goes, and comes back with the next line. */
  interrupt(): void {
    this.clear();
  }

  /** The stream ended; `failed`: with an error, which the caller prints next. */
  finish(failed: boolean): void {
    if (this.pending) {
      const rest = this.pending;
      this.pending = '';
      this.line(rest);
    }
    this.clear();
    if (failed && this.running) for (const l of this.step) this.out.write(`${l}\n`);
    this.running = false;
  }

  /** Returns true when the window changed. */
  private line(l: string): boolean {
    if (this.running) {
      if (l.startsWith(' ---> Removed intermediate container ')) {
        this.clear();
        this.running = false;
        this.step = [];
        this.out.write(`${l}\n`);
        return false;
      }
      this.step.push(l);
      if (this.step.length > KEEP) this.step.shift();
      return true;
    }
    this.clear();
    this.out.write(`${l}\n`);
    if (/^ ---> Running in [0-9a-f]+$/.test(l)) {
      this.running = true;
      this.step = [];
    }
    return false;
  }

  private clear(): void {
    if (this.shown) this.out.write(`\x1b[${this.shown}A\r\x1b[J`);
    this.shown = 0;
  }

  private redraw(): void {
    this.clear();
    // Each window line fits the terminal's width: a wrapped line would break the count to move back over.
    const width = Math.max(8, this.columns() - 4);
    const lines = this.step.slice(-WINDOW).map((l) => {
      const v = visible(l);
      return v.length > width ? `${v.slice(0, width - 1)}…` : v;
    });
    for (const l of lines) this.out.write(`\x1b[2m │ ${l}\x1b[0m\n`);
    this.shown = lines.length;
  }
}
