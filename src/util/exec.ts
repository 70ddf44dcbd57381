/** Runs a host tool (ip, nft, mount, crun…) and returns its output, or throws with its stderr. */
import { spawn } from 'node:child_process';
import { systemError } from './errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** When true, a non-zero exit is returned rather than thrown. */
  allowFail?: boolean;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(systemError(`${cmd}: ${e.message}`, e)));
    child.on('close', (code, signal) => {
      const res = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? (signal ? 128 : 1) };
      if (res.code !== 0 && !opts.allowFail) {
        reject(systemError(`${cmd} ${args.join(' ')}: ${res.stderr.trim() || `exit ${res.code}`}`));
      } else resolve(res);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}
