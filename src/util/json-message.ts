/**
 * Docker's JSON-message stream (pull, push, load, import, build): one JSON object per line,
 * `{"status","id","progressDetail"}` for progress, `{"stream"}` for text, `{"errorDetail","error"}`
 * for a failure. The engine writes to it; `api/` opens it on an HTTP response.
 */
import type { Writable } from 'node:stream';

export class JsonMessageStream {
  /** False until the first message (or the end) went out. */
  started = false;
  constructor(
    private readonly out: Writable,
    /** Called once, before the first bytes: a lazy stream opens its response here. */
    private readonly onFirst?: () => void,
  ) {}
  private begin(): void {
    if (this.started) return;
    this.started = true;
    this.onFirst?.();
  }
  send(msg: Record<string, unknown>): void {
    this.begin();
    this.out.write(JSON.stringify(msg) + '\n');
  }
  status(status: string, id?: string): void {
    this.send(id ? { status, id } : { status });
  }
  stream(text: string): void {
    this.send({ stream: text });
  }
  error(message: string, code?: number): void {
    this.send({ errorDetail: code === undefined ? { message } : { code, message }, error: message });
  }
  end(): void {
    this.begin();
    this.out.end();
  }
}
