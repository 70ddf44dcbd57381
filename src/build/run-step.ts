/**
 * A RUN step as a real container, through the same service path as `docker run` (rootfs, mounts,
 * network, OCI spec, conmon + crun): create, attach before start so no output is lost, start,
 * wait. The caller commits the container's upper directory and removes the container.
 */
import { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { AttachSession } from '../containers/attach.js';
import type { ContainerService } from '../containers/service.js';
import type { HostConfig } from '../model/container.js';

/** Marks step containers, so that any a crash left behind are found and removed at the next start. */
export const STEP_LABEL = 'berth.build.step';

export interface RunStepOptions {
  image: string;
  cmd: string[];
  env: string[];
  workdir: string;
  user: string;
  hostConfig: HostConfig;
  signal: AbortSignal;
  onCreated(id: string): void;
  onOutput(text: string): void;
}

/** Turns the attach session's multiplexed frames back into text, stream by stream. */
class FrameSink extends Duplex {
  private buf = Buffer.alloc(0);
  private readonly decoders = [
    new StringDecoder('utf8'),
    new StringDecoder('utf8'),
    new StringDecoder('utf8'),
  ];
  constructor(private readonly onText: (text: string) => void) {
    super();
    this.push(null); // no stdin
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 8) {
      const size = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + size) break;
      const stream = this.buf[0] === 2 ? 2 : 1;
      const text = this.decoders[stream].write(this.buf.subarray(8, 8 + size));
      this.buf = this.buf.subarray(8 + size);
      if (text) this.onText(text);
    }
    cb();
  }
  override _final(cb: (err?: Error | null) => void): void {
    for (const d of this.decoders) {
      const rest = d.end();
      if (rest) this.onText(rest);
    }
    cb();
  }
}

/** Runs the step; returns the container ID and its exit code. The container is left for the caller to remove. */
export async function runStep(
  containers: ContainerService,
  o: RunStepOptions,
): Promise<{ id: string; exitCode: number }> {
  const { Id: id } = await containers.create({
    Image: o.image,
    Cmd: o.cmd,
    Entrypoint: [''],
    Env: o.env,
    WorkingDir: o.workdir,
    User: o.user,
    AttachStdout: true,
    AttachStderr: true,
    Healthcheck: { Test: ['NONE'] },
    Labels: { [STEP_LABEL]: '1' },
    HostConfig: o.hostConfig,
  });
  o.onCreated(id);
  const record = containers.get(id);
  const sink = new FrameSink(o.onOutput);
  const outputDone = new Promise<void>((resolve) => {
    sink.once('finish', resolve);
    sink.once('close', resolve);
  });
  const session = new AttachSession(sink, Buffer.alloc(0), {
    tty: false,
    stdin: false,
    stdout: true,
    stderr: true,
  });
  await containers.attach(record, session);
  const waiting = containers.wait(id, 'next-exit');
  const onAbort = () => void containers.kill(id, 'SIGKILL').catch(() => {});
  o.signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (o.signal.aborted) throw new Error('build cancelled');
    try {
      await containers.start(id);
    } catch (err) {
      waiting.cancel();
      session.close();
      throw err;
    }
    const { StatusCode } = await waiting;
    // The monitor closes the attach socket when the process is gone; wait for the last bytes.
    await Promise.race([outputDone, new Promise((r) => setTimeout(r, 2000).unref())]);
    session.close();
    return { id, exitCode: StatusCode };
  } finally {
    o.signal.removeEventListener('abort', onAbort);
  }
}
