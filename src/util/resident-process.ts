/**
 * A long-lived command-line tool fed on stdin (`ip -batch -`, `nft -i`): starting such a tool costs
 * tens of ms here, a command in a running one a few. Each request ends with a marker the tool
 * answers with an error on stderr; `take` finds it and says what the request's own output was.
 * Every process keeps its own buffer and waiters: one that was closed and exits late must not
 * reject, or eat the output of, the requests of the process that replaced it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { systemError } from './errors.js';

/** Finds `marker` in the stderr read so far: the request's result and the text after it. */
export type TakeMarker<T> = (err: string, marker: string) => { result: T; rest: string } | undefined;

export class ResidentProcess<T> {
  alive = true;
  private readonly proc: ChildProcess;
  private err = '';
  private readonly queue: { marker: string; resolve: (r: T) => void; reject: (e: Error) => void }[] = [];

  constructor(
    command: string,
    args: string[],
    private readonly take: TakeMarker<T>,
  ) {
    const p = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    p.stderr!.setEncoding('utf8');
    p.stderr!.on('data', (chunk: string) => {
      this.err += chunk;
      this.drain();
    });
    p.stdin!.on('error', () => {});
    p.on('error', () => {});
    p.on('exit', () => {
      this.alive = false;
      for (const w of this.queue.splice(0)) w.reject(systemError(`${command} process exited`));
    });
    this.proc = p;
  }

  /** Writes `input` (which must end with the line that produces `marker`). */
  run(input: string, marker: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ marker, resolve, reject });
      this.proc.stdin!.write(input);
    });
  }

  /** Ends the process once it has read what it was given. */
  end(): void {
    this.alive = false;
    this.proc.stdin?.end();
  }

  private drain(): void {
    for (;;) {
      const w = this.queue[0];
      if (!w) return;
      const found = this.take(this.err, w.marker);
      if (!found) return;
      this.err = found.rest;
      this.queue.shift();
      w.resolve(found.result);
    }
  }
}
