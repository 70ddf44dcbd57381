/**
 * Checks a layer tar before anything is extracted from it, and records what the extractor must
 * convert afterwards (`.wh.` whiteouts, `.wh..wh..opq` opaque markers).
 *
 * Refused (400): members whose name has a `..` component, members written below a symlink the
 * same archive made (`a -> /etc`, then `a/passwd`), hard links leaving the layer or going through
 * such a symlink, device files, truncated or corrupt archives. GNU tar refuses most of these too
 * (exit 2, with placeholder files for suspicious symlinks), but only after writing part of the
 * layer; scanning first gives a clear error and nothing half-written.
 */
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, invalid } from '../util/errors.js';
import { cleanName, extract, type TarHeader } from './tar.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

export interface ScanResult {
  /** Paths (layer-relative) that are whited out: the `.wh.` file's sibling name. */
  whiteouts: string[];
  /** Directories marked opaque. */
  opaques: string[];
  /** `.wh.` files that are whiteout metadata without meaning here (aufs `.wh..wh.plnk`…): removed. */
  junk: string[];
  /** Sum of regular file sizes: the layer's size as `docker images` shows it. */
  size: number;
  entries: number;
}

export const tarError = (reason: string) => invalid(`Error processing tar file: ${reason}`);

/** Validates one header against what came before; exported for unit tests. */
export class LayerChecker {
  private readonly symlinks = new Set<string>();
  private readonly seen = new Set<string>();
  readonly result: ScanResult = { whiteouts: [], opaques: [], junk: [], size: 0, entries: 0 };

  constructor(private readonly allowDevices = false) {}

  check(h: TarHeader): void {
    const type = h.type ?? 'file';
    if (
      type === 'pax-global-header' ||
      type === 'pax-header' ||
      type === 'gnu-long-path' ||
      type === 'gnu-long-link-path'
    )
      return;
    const raw = h.name;
    if (raw.includes('\0')) throw tarError(`invalid member name ${JSON.stringify(raw)}`);
    const name = cleanName(raw);
    this.result.entries++;
    if (name === '') return; // the root directory itself
    if (name.split('/').includes('..')) throw tarError(`member name contains '..': ${JSON.stringify(raw)}`);
    this.checkParents(name, raw);
    if (type === 'link') {
      const target = cleanName(h.linkname ?? '');
      if (target === '' || target.split('/').includes('..'))
        throw tarError(`invalid hardlink ${JSON.stringify(raw)} -> ${JSON.stringify(h.linkname)}`);
      this.checkParents(target, h.linkname ?? '');
      if (this.symlinks.has(target))
        throw tarError(
          `invalid hardlink ${JSON.stringify(raw)} -> ${JSON.stringify(h.linkname)}: target is a symlink`,
        );
      if (!this.seen.has(target))
        throw tarError(
          `invalid hardlink ${JSON.stringify(raw)} -> ${JSON.stringify(h.linkname)}: target is not in the archive before it`,
        );
    }
    if ((type === 'character-device' || type === 'block-device') && !this.allowDevices) {
      throw tarError(`device files are not allowed in an image layer: ${JSON.stringify(raw)}`);
    }
    if (
      ![
        'file',
        'contiguous-file',
        'link',
        'symlink',
        'directory',
        'fifo',
        'character-device',
        'block-device',
      ].includes(type)
    ) {
      throw tarError(`unsupported member type ${type}: ${JSON.stringify(raw)}`);
    }
    const base = path.posix.basename(name);
    const dir = path.posix.dirname(name) === '.' ? '' : path.posix.dirname(name);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      if (type !== 'file' && type !== 'contiguous-file')
        throw tarError(`whiteout ${JSON.stringify(raw)} is not a regular file`);
      if (base === OPAQUE_MARKER) this.result.opaques.push(dir);
      else if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) this.result.junk.push(name);
      else {
        const hidden = base.slice(WHITEOUT_PREFIX.length);
        if (hidden === '' || hidden === '.' || hidden === '..')
          throw tarError(`invalid whiteout ${JSON.stringify(raw)}`);
        this.result.whiteouts.push(dir ? `${dir}/${hidden}` : hidden);
      }
    }
    if (type === 'symlink') this.symlinks.add(name);
    else this.symlinks.delete(name);
    if (type === 'file' || type === 'contiguous-file') this.result.size += h.size ?? 0;
    this.seen.add(name);
  }

  private checkParents(name: string, raw: string): void {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (this.symlinks.has(prefix)) {
        throw tarError(
          `${JSON.stringify(raw)} would be written through the symlink ${JSON.stringify(prefix)} (outside the layer)`,
        );
      }
    }
  }
}

/** Scans a whole (uncompressed) layer tar; rejects with a 400 `Error processing tar file: …`. */
export async function scanTar(source: Readable, opts: { allowDevices?: boolean } = {}): Promise<ScanResult> {
  const ex = extract();
  const checker = new LayerChecker(opts.allowDevices);
  source.on('error', (e) => (ex as unknown as { destroy: (e: Error) => void }).destroy(e));
  source.pipe(ex as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of ex) {
      checker.check(entry.header);
      entry.resume();
    }
  } catch (err) {
    source.destroy();
    if (err instanceof BerthError) throw err;
    throw tarErrorFrom(err);
  }
  return checker.result;
}

export function tarErrorFrom(err: unknown): BerthError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/unexpected end|stream was destroyed|premature close/i.test(msg)) return tarError('unexpected EOF');
  if (/invalid tar header/i.test(msg)) return tarError('archive/tar: invalid tar header');
  return tarError(msg);
}
