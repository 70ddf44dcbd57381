/**
 * mount(2) and umount2(2) from one resident helper, without a process per call: Node has no
 * binding for them, and on these machines every fork + exec costs ≈ 5 ms of page-table work (the
 * busybox `mount` a shell would run). The helper is Debian's python3 (already installed for the
 * seccomp compiler) calling libc through ctypes; it reads one JSON request per line and answers one
 * JSON line, in order. It starts at the first call and exits after 30 s without one, or with
 * berthd (its stdin closes); one that dies is replaced. Callers fall back to the shell when
 * python3 is missing.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { holdProcess } from '../util/child-ref.js';

const PYTHON = '/usr/bin/python3';

const HELPER = `
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MNT_DETACH = 2
for line in sys.stdin:
    try:
        q = json.loads(line)
        if q['op'] == 'mount':
            os.chdir(q['cwd'])
            r = libc.mount(q['source'].encode(), q['target'].encode(), q['fstype'].encode(), 0, q['data'].encode())
        else:
            r = libc.umount2(q['target'].encode(), MNT_DETACH if q.get('lazy') else 0)
        e = ctypes.get_errno() if r != 0 else 0
        out = {'code': 0} if r == 0 else {'code': 1, 'output': os.strerror(e)}
    except Exception as x:
        out = {'code': 1, 'output': str(x)}
    sys.stdout.write(json.dumps(out) + '\\n')
    sys.stdout.flush()
`;

export interface MountRequest {
  op: 'mount' | 'umount';
  target: string;
  source?: string;
  fstype?: string;
  /** Filesystem data (overlay's lowerdir=…); flags are not taken. */
  data?: string;
  cwd?: string;
  lazy?: boolean;
}

export interface MountResult {
  code: number;
  output: string;
}

export class MountHelper {
  private proc?: ChildProcessWithoutNullStreams;
  private buf = '';
  private readonly pending: ((r: MountResult) => void)[] = [];
  private idleTimer?: NodeJS.Timeout;

  /** `idleMs`: idle time after which the helper exits (it holds ≈ 10 MB); the next call starts it again. */
  constructor(private readonly idleMs = 30_000) {}

  static available(): boolean {
    return existsSync(PYTHON);
  }

  private helper(): ChildProcessWithoutNullStreams {
    if (this.proc && this.proc.exitCode === null && !this.proc.killed) return this.proc;
    const proc = spawn(PYTHON, ['-S', '-c', HELPER], { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      if (this.proc !== proc) return; // a retired helper has nothing pending
      this.buf += chunk;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        let r: MountResult;
        try {
          const o = JSON.parse(line) as { code: number; output?: string };
          r = { code: o.code, output: o.output ?? '' };
        } catch {
          r = { code: 1, output: `mount helper: ${line}` };
        }
        this.pending.shift()?.(r);
      }
    });
    proc.stderr.resume();
    proc.on('exit', () => {
      if (this.proc !== proc) return; // retired when idle: its successor's calls are not its own
      this.proc = undefined;
      this.buf = '';
      for (const w of this.pending.splice(0)) w({ code: 255, output: 'the mount helper exited' });
    });
    proc.stdin.on('error', () => {});
    this.proc = proc;
    holdProcess(this.proc, false);
    return proc;
  }

  /** One request; answers come back in order. */
  run(req: MountRequest): Promise<MountResult> {
    clearTimeout(this.idleTimer);
    return new Promise((resolve) => {
      const proc = this.helper();
      holdProcess(proc, true);
      this.pending.push((r) => {
        if (this.pending.length === 0) {
          holdProcess(proc, false);
          this.idleTimer = setTimeout(() => this.retire(), this.idleMs).unref();
        }
        resolve(r);
      });
      proc.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  /** Lets an idle helper exit; a later call starts a new one. */
  private retire(): void {
    if (this.pending.length > 0) return;
    const p = this.proc;
    this.proc = undefined;
    this.buf = '';
    p?.stdin.end();
  }

  close(): void {
    clearTimeout(this.idleTimer);
    this.retire();
  }
}
