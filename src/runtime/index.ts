/**
 * The OCI runtime as the container life cycle sees it (Podman's `OCIRuntime` shape): one
 * interface, with the conmon-monitored crun/runc behind it. The state machine above never
 * shells out itself.
 */
import type { OciProcess, OciSpec } from './spec/types.js';

export interface CreateOptions {
  id: string;
  name: string;
  spec: OciSpec;
  runtime: string; // crun | runc
  tty: boolean;
  openStdin: boolean;
  /** Keep the container's stdin open after an attached client goes (OpenStdin without StdinOnce). */
  leaveStdinOpen: boolean;
  /** conmon's log: its k8s-file at logPath (json-file is made from it above), or none. */
  logDriver?: 'k8s-file' | 'none';
  logPath: string;
  logSizeMax?: number;
}

export interface ExecOptions {
  containerId: string;
  execId: string;
  runtime: string;
  process: OciProcess;
  tty: boolean;
  openStdin: boolean;
}

export interface ExecHandle {
  attachSocket: string;
  /** Lets the monitor run the process; resolves with its PID, rejects with the runtime's error. */
  start(): Promise<number>;
}

export interface RuntimeState {
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  pid: number;
}

/** The runtime refused to create the container (its message, cleaned, is the user's error). */
export class RuntimeStartError extends Error {}
/** Limits `docker update` changes on a running container (bytes, CFS µs, shares, pids). */
export interface ResourceUpdate {
  memory?: number;
  memorySwap?: number;
  cpuShares?: number;
  cpuPeriod?: number;
  cpuQuota?: number;
  pidsLimit?: number;
}

export interface OciRuntime {
  /** Prepares the runtime's directories and exit watch; once, before any other call. */
  init(): Promise<void>;
  /** Stops watching (daemon shutdown); containers and their monitors keep running. */
  close(): void;
  /** Starts the monitor, which creates the container (not yet running); returns its init PID. */
  create(opts: CreateOptions): Promise<number>;
  start(id: string, runtime: string): Promise<void>;
  kill(id: string, runtime: string, signal: string | number, all?: boolean): Promise<void>;
  pause(id: string, runtime: string): Promise<void>;
  resume(id: string, runtime: string): Promise<void>;
  delete(id: string, runtime: string): Promise<void>;
  /** `delete` for a container known to have exited: its state goes without a runtime call where possible. */
  deleteStopped(id: string, runtime: string): Promise<void>;
  state(id: string, runtime: string): Promise<RuntimeState | undefined>;
  /** Whether the runtime holds a container of this ID (created, running or stopped); no process spawned. */
  holds(id: string, runtime: string): boolean;
  /** Path of the attach socket (SOCK_SEQPACKET; 1 stream byte + payload per message). */
  attachSocket(id: string): string;
  /** Resizes the container's terminal through the monitor's window-size pipe. */
  resize(id: string, height: number, width: number): Promise<void>;
  /** The exit code recorded by the monitor, once the container's process is gone. */
  exitCode(id: string): Promise<number | undefined>;
  /** Waits for the exit file of `id` (container or exec session). */
  onExit(id: string, cb: (code: number) => void): () => void;
  /** Prepares an exec session; connect to `attachSocket` (unless detached), then `start()`. */
  exec(opts: ExecOptions): Promise<ExecHandle>;
  execExitCode(execId: string): Promise<number | undefined>;
  onExecExit(execId: string, cb: (code: number) => void): () => void;
  resizeExec(execId: string, height: number, width: number): Promise<void>;
  removeExec(execId: string): Promise<void>;
  /** An exec session's combined output as the monitor logged it, at most `max` bytes. */
  execOutput(execId: string, max: number): Promise<string>;
  /** Changes the cgroup limits of a running container. */
  update(id: string, runtime: string, resources: ResourceUpdate): Promise<void>;
  /** Removes the monitor's files for a container. */
  cleanup(id: string): Promise<void>;
}
