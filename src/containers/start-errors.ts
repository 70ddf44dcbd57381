/** Runtime start failures, worded as moby words them. */
import { type BerthError, systemError } from '../util/errors.js';

/**
 * The runtime's start failure, worded as moby words it so the docker CLI maps it to 126/127
 * (it matches `executable file not found`, `no such file or directory`, `permission denied`).
 */
export function startError(raw: string): BerthError {
  const text = raw.replace(/\s+/g, ' ').trim();
  let detail = text;
  const notFoundInPath = /executable file `([^`]+)` not found in \$PATH/.exec(text) ?? /exec: "([^"]+)": executable file not found/.exec(text);
  if (notFoundInPath) {
    const exe = notFoundInPath[1];
    detail = exe.includes('/') ? `exec: "${exe}": stat ${exe}: no such file or directory` : `exec: "${exe}": executable file not found in $PATH`;
  } else if (/open executable: Permission denied|permission denied/i.test(text)) {
    const m = /exec: "([^"]+)"/.exec(text);
    detail = `exec: ${m ? `"${m[1]}": ` : ''}permission denied`;
  } else if (/open executable: Operation not permitted|is a directory/i.test(text)) {
    detail = 'exec: is a directory: permission denied';
  } else if (/No such file or directory/.test(text)) {
    detail = text.replace(/No such file or directory/g, 'no such file or directory');
  }
  return systemError(`failed to create task for container: OCI runtime create failed: unable to start container process: ${detail}: unknown`);
}

export function exitCodeFor(err: Error): number {
  const m = err.message;
  if (/executable file not found|no such file or directory/.test(m)) return 127;
  if (/permission denied|is a directory/.test(m)) return 126;
  return 128;
}

