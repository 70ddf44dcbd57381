/**
 * gzip for pushed layers: Debian's `pigz` when installed (compression is the one step where a
 * subprocess wins, about 2× on two cores), node:zlib otherwise. No name or timestamp goes into
 * the header, so the same tar always gives the same blob with the same tool.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { BerthError } from '../util/errors.js';

const PIGZ = ['/usr/bin/pigz', '/bin/pigz'].find((p) => existsSync(p));

export function gzipStream(source: Readable): Readable {
  if (!PIGZ) {
    const gz = createGzip({ level: 6 });
    source.on('error', (e) => gz.destroy(e));
    return source.pipe(gz);
  }
  const child = spawn(PIGZ, ['-c', '-n', '-6'], { stdio: ['pipe', 'pipe', 'pipe'] });
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
  child.on('error', (e) => out.destroy(new BerthError('system', `pigz: ${e.message}`)));
  child.on('close', (code) => {
    if (code === 0) out.end();
    else if (!out.destroyed) out.destroy(new BerthError('system', `pigz: ${stderr.trim() || `exited with ${code}`}`));
  });
  out.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return out;
}
