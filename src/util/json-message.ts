/**
 * Docker's JSON-message stream (pull, push, load, import, build): one JSON object per line,
 * `{"status","id","progressDetail"}` for progress, `{"stream"}` for text, `{"errorDetail","error"}`
 * for a failure. The engine writes to it; `api/` opens it on an HTTP response.
 */
import type { Writable } from 'node:stream';

export class JsonMessageStream {
  constructor(private readonly out: Writable) {}
  send(msg: Record<string, unknown>): void {
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
    this.out.end();
  }
}
