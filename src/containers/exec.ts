/** Exec sessions (`docker exec`): a process started in a running container by its own monitor. */
import type { Duplex } from 'node:stream';
import { frame, STDERR } from '../util/stdcopy.js';
import { buildSpec, withCapabilities, withCwd, withEnv, withNoNewPrivileges, withProcessArgs, withTerminal, withUser } from '../runtime/spec/opts.js';
import { conflict, invalid, notFound } from '../util/errors.js';
import { newId } from '../util/ids.js';
import { log } from '../util/log.js';
import { AttachSession } from './attach.js';
import { exitCodeFor, startError } from './start-errors.js';
import type { ContainerRecord } from '../model/container.js';
import { resolveUser } from './user.js';
import { type OciRuntime, RuntimeStartError } from '../runtime/index.js';
import type { ContainerDirectory } from '../model/container-directory.js';
import { goDuration, MAX_PROBE_OUTPUT } from './health.js';

export interface ExecConfig {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
  Env?: string[] | null;
  Cmd?: string[];
  User?: string;
  WorkingDir?: string;
  Privileged?: boolean;
  DetachKeys?: string;
}

export interface ExecSession {
  ID: string;
  ContainerID: string;
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
  OpenStdin: boolean;
  OpenStdout: boolean;
  OpenStderr: boolean;
  CanRemove: boolean;
  DetachKeys: string;
  ProcessConfig: { tty: boolean; entrypoint: string; arguments: string[]; privileged: boolean; user: string };
  config: ExecConfig;
  started: boolean;
}

export class ExecService {
  private readonly sessions = new Map<string, ExecSession>();

  constructor(
    private readonly containers: ContainerDirectory,
    private readonly runtime: OciRuntime,
    private readonly rootfsOf: (id: string) => Promise<string>,
  ) {}

  create(ref: string, cfg: ExecConfig): string {
    const c = this.containers.get(ref);
    if (!Array.isArray(cfg.Cmd) || cfg.Cmd.length === 0) throw invalid('No exec command specified');
    if (c.State.Paused) throw conflict(`Container ${c.Id} is paused, unpause the container before exec`);
    if (!c.State.Running) throw conflict(`container ${c.Id} is not running`);
    const id = newId();
    this.sessions.set(id, {
      ID: id,
      ContainerID: c.Id,
      Running: false,
      ExitCode: null,
      Pid: 0,
      OpenStdin: Boolean(cfg.AttachStdin),
      OpenStdout: cfg.AttachStdout !== false,
      OpenStderr: cfg.AttachStderr !== false,
      CanRemove: false,
      DetachKeys: cfg.DetachKeys ?? '',
      ProcessConfig: { tty: Boolean(cfg.Tty), entrypoint: cfg.Cmd[0], arguments: cfg.Cmd.slice(1), privileged: Boolean(cfg.Privileged), user: cfg.User ?? '' },
      config: cfg,
      started: false,
    });
    c.ExecIDs = [...(c.ExecIDs ?? []), id];
    return id;
  }

  get(id: string): ExecSession {
    const s = this.sessions.get(id);
    if (!s) throw notFound(`No such exec instance: ${id}`);
    return s;
  }

  /** Starts the session; with a client socket, streams its stdio until it exits. */
  async start(id: string, opts: { detach: boolean; tty?: boolean; consoleSize?: [number, number] | null }, client?: { socket: Duplex; head: Buffer }): Promise<void> {
    const s = this.get(id);
    if (s.started) throw conflict(`Error: Exec command ${id} has already run`);
    const c = this.containers.get(s.ContainerID);
    if (c.State.Paused) throw conflict(`Container ${c.Id} is paused, unpause the container before exec`);
    if (!c.State.Running) throw conflict(`container ${c.Id} is not running`);
    s.started = true;
    const cfg = s.config;
    const tty = opts.tty ?? Boolean(cfg.Tty);
    const rootfs = await this.rootfsOf(c.Id);
    const proc = this.processSpec(c, cfg, rootfs, tty, opts.consoleSize ?? cfg.ConsoleSize ?? undefined);
    const runtime = this.runtime;
    const session = client && !opts.detach ? new AttachSession(client.socket, client.head, { tty, stdin: s.OpenStdin, stdout: s.OpenStdout, stderr: s.OpenStderr }) : undefined;
    let stopWatch: (() => void) | undefined;
    try {
      const handle = await runtime.exec({
        containerId: c.Id,
        execId: id,
        runtime: c.HostConfig.Runtime || 'crun',
        process: proc,
        tty,
        openStdin: s.OpenStdin,
      });
      const exited = new Promise<number>((resolve) => {
        stopWatch = runtime.onExecExit(id, resolve);
      });
      const recorded = exited.then((code) => {
        s.Running = false;
        s.ExitCode = code;
      });
      // The client reads the exit code right after EOF: it must be recorded by then.
      if (session) session.gate = recorded;
      if (session) await session.connect(handle.attachSocket);
      s.Pid = await handle.start();
      s.Running = s.ExitCode === null;
      void recorded.then(async () => {
        await runtime.removeExec(id).catch(() => {});
        c.ExecIDs = (c.ExecIDs ?? []).filter((x) => x !== id);
        if (!c.ExecIDs.length) c.ExecIDs = null;
      });
    } catch (err) {
      const e = err instanceof RuntimeStartError ? startError(err.message).message.replace('failed to create task for container: OCI runtime create failed', 'OCI runtime exec failed: exec failed') : (err as Error).message;
      s.Running = false;
      s.ExitCode = exitCodeFor(new Error(e));
      log.debug('exec failed', { id, err: e });
      await runtime.removeExec(id).catch(() => {});
      stopWatch?.();
      if (session && client) {
        session.gate = undefined;
        const msg = Buffer.from(`${e}\r\n`);
        client.socket.write(tty ? msg : frame(STDERR, msg));
        session.finish();
        return;
      }
      throw err instanceof RuntimeStartError ? new Error(e) : err;
    }
  }

  /**
   * Runs a healthcheck probe: an exec without a client whose output is read back from the
   * monitor's log of the session. Past `timeoutMs` the probe is killed and reported as Docker
   * reports it (exit code -1).
   */
  async probe(c: ContainerRecord, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const id = newId();
    const runtime = this.runtime;
    const rootfs = await this.rootfsOf(c.Id);
    const proc = this.processSpec(c, { Cmd: cmd }, rootfs, false);
    let stopWatch: (() => void) | undefined;
    try {
      const handle = await runtime.exec({ containerId: c.Id, execId: id, runtime: c.HostConfig.Runtime || 'crun', process: proc, tty: false, openStdin: false });
      const exited = new Promise<number>((resolve) => {
        stopWatch = runtime.onExecExit(id, resolve);
      });
      const pid = await handle.start();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
        return { exitCode: -1, output: `Health check exceeded timeout (${goDuration(timeoutMs)})` };
      }
      return { exitCode: outcome, output: await runtime.execOutput(id, MAX_PROBE_OUTPUT) };
    } catch (err) {
      if (err instanceof RuntimeStartError) throw new Error(startError(err.message).message.replace('failed to create task for container: OCI runtime create failed', 'OCI runtime exec failed: exec failed'));
      throw err;
    } finally {
      stopWatch?.();
      await runtime.removeExec(id).catch(() => {});
    }
  }

  private processSpec(c: ContainerRecord, cfg: ExecConfig, rootfs: string, tty: boolean, size?: [number, number]) {
    const user = resolveUser(rootfs, cfg.User || c.Config.User);
    const env = [...c.Config.Env];
    for (const e of cfg.Env ?? []) {
      const k = e.split('=', 1)[0];
      const i = env.findIndex((x) => x.split('=', 1)[0] === k);
      if (i >= 0) env[i] = e;
      else env.push(e);
    }
    if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
    if (!env.some((e) => e.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${c.Config.Hostname}`);
    if (tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
    const noNewPrivs = (c.HostConfig.SecurityOpt ?? []).some((o) => /^no-new-privileges(=true|:true)?$/.test(o));
    const spec = buildSpec(rootfs, [
      withProcessArgs(cfg.Cmd ?? []),
      withEnv(env),
      withCwd(cfg.WorkingDir || c.Config.WorkingDir || '/'),
      withUser(user.uid, user.gid, user.additionalGids),
      withTerminal(tty, size ?? undefined),
      withCapabilities(c.HostConfig.CapAdd ?? [], c.HostConfig.CapDrop ?? [], Boolean(c.HostConfig.Privileged || cfg.Privileged)),
      withNoNewPrivileges(noNewPrivs),
    ]);
    return spec.process;
  }

  async resize(id: string, height: number, width: number): Promise<void> {
    const s = this.get(id);
    if (!s.Running) throw conflict(`Exec ${id} is not running`);
    await this.runtime.resizeExec(id, height, width);
  }

  inspect(id: string) {
    const s = this.get(id);
    const { config: _c, started: _s, ...rest } = s;
    return rest;
  }
}
