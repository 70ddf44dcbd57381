/**
 * Reads a `k8s-file` log (conmon's format: `<RFC3339Nano> <stdout|stderr> <F|P> <msg>`), the
 * driver kept for containers that chose it (and those created before json-file was the default):
 * since/until/tail/timestamps, and follow until the container stops.
 */
import { createReadStream, promises as fs, watch } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { ReadOptions } from './logging/json-reader.js';
import { type LogOutput, STREAM_STDERR, STREAM_STDOUT } from './logging/output.js';

export interface LogLine {
  stream: 'stdout' | 'stderr';
  time: string; // RFC3339Nano, UTC with Z
  seconds: number;
  text: string; // with its newline unless partial
}

export function parseLogLine(line: string): LogLine | undefined {
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  const c = line.indexOf(' ', b + 1);
  if (a < 0 || b < 0 || c < 0) return undefined;
  const ts = line.slice(0, a);
  const stream = line.slice(a + 1, b);
  const tag = line.slice(b + 1, c);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d|Z)$/.exec(ts);
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`) / 1000 + Number(`0${m[2] ?? ''}`);
  const iso = new Date(Math.floor(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  const frac = (m[2] ?? '.0').slice(1).padEnd(9, '0');
  return { stream, time: `${iso}.${frac}Z`, seconds, text: line.slice(c + 1) + (tag === 'P' ? '' : '\n') };
}

function wanted(l: LogLine, o: ReadOptions): boolean {
  if (l.stream === 'stdout' && !o.stdout) return false;
  if (l.stream === 'stderr' && !o.stderr) return false;
  if (o.since !== undefined && l.seconds < o.since.s + o.since.ns / 1e9) return false;
  if (o.until !== undefined && l.seconds > o.until.s + o.until.ns / 1e9) return false;
  return true;
}

/**
 * Streams matching lines of a k8s-file log to `out`. With `follow`, keeps reading appended lines
 * until `stopped` resolves (the container stopped) and the file has been drained, or `abort` fires.
 */
export async function readK8sLog(file: string, o: ReadOptions, out: LogOutput, stopped: Promise<void>, abort: AbortSignal, follow: boolean): Promise<void> {
  let offset = 0;
  let rest = '';
  const decoder = new StringDecoder('utf8');
  const emit = (l: LogLine) => {
    const b = Buffer.from(l.text);
    out.add(l.stream === 'stdout' ? STREAM_STDOUT : STREAM_STDERR, b, 0, b.length, out.timestamps ? Buffer.from(`${l.time} `) : undefined);
  };
  const readMore = async (collect?: LogLine[]) => {
    let size: number;
    try {
      size = (await fs.stat(file)).size;
    } catch {
      return;
    }
    if (size < offset) offset = 0; // truncated (log size limit)
    if (size === offset) return;
    const stream = createReadStream(file, { start: offset, end: size - 1, highWaterMark: 256 * 1024 });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      offset += chunk.length;
      const text = rest + decoder.write(chunk);
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const raw of lines) {
        const l = parseLogLine(raw);
        if (l && wanted(l, o)) {
          if (!collect) emit(l);
          else if (collect.push(l) > 2 * (o.tail ?? 0) + 1000) collect.splice(0, collect.length - (o.tail ?? 0));
        }
      }
      await out.flush();
    }
  };
  if (o.tail !== undefined) {
    const all: LogLine[] = [];
    await readMore(all);
    for (const l of o.tail === 0 ? [] : all.slice(-o.tail)) emit(l);
    await out.flush();
  } else {
    await readMore();
  }
  if (!follow || abort.aborted) return;
  let done = false;
  await new Promise<void>((resolve) => {
    let busy = Promise.resolve();
    const pump = () => {
      busy = busy.then(() => readMore()).catch(() => {});
      return busy;
    };
    const watcher = watch(file, () => void pump());
    const timer = setInterval(() => void pump(), 250);
    const finish = () => {
      if (done) return;
      done = true;
      watcher.close();
      clearInterval(timer);
      void pump().then(() => resolve());
    };
    stopped.then(finish);
    abort.addEventListener('abort', finish);
  });
}
