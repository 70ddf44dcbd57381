/**
 * Compression of pushed layers. gzip: Debian's `pigz` when installed (compression is the one step
 * where a subprocess wins, about 2× on two cores), node:zlib otherwise. zstd: Debian's `zstd` (Node
 * 20 has no zstd). No name or timestamp goes into the output, so the same tar always gives the
 * same blob with the same tool.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { BerthError } from '../util/errors.js';

const PIGZ = ['/usr/bin/pigz', '/bin/pigz'].find((p) => existsSync(p));
const ZSTD = ['/usr/bin/zstd', '/bin/zstd'].find((p) => existsSync(p));

export type LayerCompression = 'gzip' | 'zstd';

export function gzipStream(source: Readable): Readable {
  if (!PIGZ) {
    const gz = createGzip({ level: 6 });
    source.on('error', (e) => gz.destroy(e));
    return source.pipe(gz);
  }
  return throughChild('pigz', PIGZ, ['-c', '-n', '-6'], source);
}

/** zstd level 3 (zstd's default), the frame with its content checksum, as containerd writes it. */
export function zstdStream(source: Readable): Readable {
  if (!ZSTD) throw new BerthError('system', 'zstd compression needs the zstd tool (Debian package zstd)');
  return throughChild('zstd', ZSTD, ['-c', '-q', '-3', '--check'], source);
}

export function compressStream(kind: LayerCompression, source: Readable): Readable {
  return kind === 'zstd' ? zstdStream(source) : gzipStream(source);
}

/** `source` piped through a compressor child; its output ends only after a clean exit. */
function throughChild(name: string, bin: string, args: string[], source: Readable): Readable {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  child.stdin.on('error', () => {}); // the exit code tells
  source.on('error', (e) => {
    child.kill('SIGKILL');
    out.destroy(e);
  });
  source.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(new BerthError('system', `${name}: ${e.message}`)));
  child.on('close', (code) => {
    if (code === 0) out.end();
    else if (!out.destroyed)
      out.destroy(new BerthError('system', `${name}: ${stderr.trim() || `exited with ${code}`}`));
  });
  out.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return out;
}
