/** Whether a long-lived helper process keeps Node's event loop alive (with its stdio pipes). */
import type { ChildProcess } from 'node:child_process';

/** An idle helper must not keep berthd alive; one with a call in flight must. */
export function holdProcess(proc: ChildProcess | undefined, on: boolean): void {
  if (!proc) return;
  for (const x of [proc, proc.stdin, proc.stdout, proc.stderr] as unknown as {
    ref?: () => void;
    unref?: () => void;
  }[]) {
    if (on) x?.ref?.();
    else x?.unref?.();
  }
}
