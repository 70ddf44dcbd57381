/**
 * Sources of COPY/ADD that are not in the context. ADD of a URL: the file is downloaded into the build's directory and then copied like a context
 * file (Docker: mode 0600, the modification time from `Last-Modified`, never unpacked), checked
 * against `--checksum=sha256:…` when given. Its content hash goes into the step's cache key, so a
 * changed remote file invalidates the step.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { invalid } from '../util/errors.js';
import { type Source, selectSources } from './copy.js';
import type { Heredoc } from './dockerfile.js';

export const isUrl = (s: string) => /^https?:\/\//i.test(s);

export async function downloadSource(url: string, dir: string, checksum?: string): Promise<Source> {
  if (checksum !== undefined && !/^sha256:[0-9a-f]{64}$/.test(checksum))
    throw invalid(`invalid checksum digest format: ${checksum}`);
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (err) {
    throw invalid(
      `failed to GET ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
    );
  }
  if (!res.ok || !res.body) throw invalid(`failed to GET ${url} with status ${res.status} ${res.statusText}`);
  const name =
    decodeURIComponent(new URL(res.url || url).pathname.split('/').filter(Boolean).pop() ?? '') ||
    '__unnamed__';
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  const hash = createHash('sha256');
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (b: Buffer) => hash.update(b));
  await pipeline(body, createWriteStream(file, { mode: 0o600 }));
  const digest = `sha256:${hash.digest('hex')}`;
  if (checksum !== undefined && digest !== checksum) throw invalid(`digest mismatch ${digest}: ${checksum}`);
  await fs.chmod(file, 0o600);
  const modified = Date.parse(res.headers.get('last-modified') ?? '');
  if (!Number.isNaN(modified)) await fs.utimes(file, new Date(modified), new Date(modified));
  return { rel: name, host: file, stat: await fs.lstat(file), remote: true };
}

/**
 * The sources of one COPY/ADD: heredocs (`COPY <<EOF /file`) and downloads (ADD of a URL) become
 * files under `scratch`; the rest is selected in `root` (the context, a stage or an image).
 */
export async function gatherSources(
  srcs: string[],
  o: { root: string; heredocs: Heredoc[]; scratch: string; what: string; checksum?: string },
): Promise<Source[]> {
  const resolved: Source[] = [];
  const plain: string[] = [];
  for (const s of srcs) {
    const doc = /^<<-?["']?([A-Za-z_][A-Za-z0-9_]*)["']?$/.exec(s);
    const h = doc ? o.heredocs.find((x) => x.name === doc[1]) : undefined;
    if (h) {
      const dir = path.join(o.scratch, `heredoc-${resolved.length}`);
      await fs.mkdir(dir, { recursive: true });
      const file = path.join(dir, h.name);
      await fs.writeFile(file, h.body, { mode: 0o644 });
      resolved.push({ rel: h.name, host: file, stat: await fs.lstat(file) });
    } else if (o.what === 'ADD' && isUrl(s)) {
      resolved.push(await downloadSource(s, path.join(o.scratch, `url-${resolved.length}`), o.checksum));
    } else plain.push(s);
  }
  if (plain.length) resolved.push(...(await selectSources(o.root, plain, o.what)));
  return resolved;
}
