/**
 * Docker's transfer progress: `{"status":"Downloading","progressDetail":{"current","total"},
 * "progress":"[==>  ] 1.2MB/4MB","id"}` lines, sent when a layer has moved on by 1% or 512 KB so a
 * big layer does not flood the stream. The docker CLI draws the bar from `progressDetail`.
 */
import { Transform } from 'node:stream';
import type { JsonMessageStream } from '../util/json-message.js';

/** Docker's `units.HumanSize`: decimal units, four significant digits. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** The 50-column bar Docker's `JSONProgress.String` draws (without the ETA). */
export function progressBar(current: number, total: number): string {
  if (total <= 0) return humanSize(current);
  const width = 50;
  const filled = Math.min(width, Math.floor((current / total) * width));
  const arrow = filled < width ? '>' : '';
  const bar = `${'='.repeat(Math.max(0, filled - (arrow ? 1 : 0)))}${arrow}${' '.repeat(width - Math.max(filled, arrow ? 1 : 0))}`;
  return `[${bar.slice(0, width)}] ${humanSize(current)}/${humanSize(total)}`;
}

export function sendProgress(out: JsonMessageStream, status: string, id: string, current: number, total: number): void {
  out.send({ status, progressDetail: { current, total }, progress: progressBar(current, total), id });
}

/**
 * Passes bytes through, reporting `status` progress for `id` as they go. With `estimated`, the
 * total is a guess (a layer's file sizes against its tar) and `current` is kept below it.
 */
export function counting(
  out: JsonMessageStream,
  status: string,
  id: string,
  total: number,
  estimated = false,
): Transform {
  let current = 0;
  let reported = 0;
  const step = Math.max(512 * 1024, Math.floor(total / 100));
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      current += chunk.length;
      if (current - reported >= step || (total > 0 && current >= total && reported < total)) {
        reported = current;
        sendProgress(out, status, id, estimated ? Math.min(current, Math.max(total - 1, 0)) : current, total);
      }
      cb(null, chunk);
    },
  });
}
