/**
 * Renders a JSON-message stream as docker's jsonmessage does: on a terminal, one line per layer ID
 * updated in place with cursor movement; otherwise plain lines (progress bars left out).
 */
import { humanSize } from './units.js';

export interface JsonMessage {
  status?: string;
  id?: string;
  from?: string;
  stream?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number; units?: string; hidecounts?: boolean };
  error?: string;
  errorDetail?: { code?: number; message?: string };
  aux?: unknown;
  time?: number;
  timeNano?: number;
}

/** An error reported inside the stream (after the 200). */
export class StreamError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

export function progressString(p: NonNullable<JsonMessage['progressDetail']>, width: number): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return p.units ? `${current} ${p.units}` : humanSize(current).padStart(8);
  let pct = Math.trunc((current / total) * 100) / 2;
  pct = Math.trunc(pct);
  if (pct > 50) pct = 50;
  let bar = '';
  if (width > 110) bar = `[${'='.repeat(pct)}>${' '.repeat(Math.max(0, 50 - pct))}] `;
  let numbers = '';
  if (p.hidecounts) numbers = '';
  else if (!p.units) {
    numbers = `${humanSize(current).padStart(8)}/${humanSize(total)}`;
    if (current > total) numbers = humanSize(current).padStart(8);
  } else {
    numbers = `${String(current).padStart(8)}/${total} ${p.units}`;
    if (current > total) numbers = `${String(current).padStart(8)} ${p.units}`;
  }
  return bar + numbers;
}

export class ProgressRenderer {
  private ids = new Map<string, number>();
  private diff = 0;
  readonly isTerminal: boolean;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly onAux?: (aux: unknown) => void,
  ) {
    this.isTerminal = !!out.isTTY;
  }

  private display(jm: JsonMessage): void {
    const term = this.isTerminal;
    const hasProgress = jm.progressDetail !== undefined;
    const width = term ? (this.out.columns ?? 200) : 200;
    const prog = hasProgress ? progressString(jm.progressDetail!, width) : '';
    let endl = '';
    let s = '';
    if (term && !jm.stream && hasProgress) {
      s += '\x1b[2K\r';
      endl = '\r';
    } else if (hasProgress && prog !== '') return;
    if (jm.id) s += `${jm.id}: `;
    if (jm.from) s += `(from ${jm.from}) `;
    if (hasProgress && term) s += `${jm.status ?? ''} ${prog}${endl}`;
    else if (jm.progress) s += `${jm.status ?? ''} ${jm.progress}${endl}`;
    else if (jm.stream) s += `${jm.stream}${endl}`;
    else s += `${jm.status ?? ''}${endl}\n`;
    this.out.write(s);
  }

  /** Handles one message; throws StreamError for an in-stream error. */
  write(jm: JsonMessage): void {
    if (jm.error || jm.errorDetail?.message)
      throw new StreamError(jm.errorDetail?.message || jm.error || 'unknown error', jm.errorDetail?.code);
    if (jm.aux !== undefined) {
      this.onAux?.(jm.aux);
      return;
    }
    const term = this.isTerminal;
    if (jm.id && (jm.progressDetail !== undefined || jm.progress)) {
      let line = this.ids.get(jm.id);
      if (line === undefined) {
        line = this.ids.size;
        this.ids.set(jm.id, line);
        if (term) this.out.write('\n');
      }
      this.diff = this.ids.size - line;
      if (term && this.diff > 0) this.out.write(`\x1b[${this.diff}A`);
    } else this.ids = new Map();
    this.display(jm);
    if (jm.id && term && this.diff > 0) this.out.write(`\x1b[${this.diff}B`);
  }
}
