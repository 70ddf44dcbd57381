/** `run`, `create`, `start`, `attach`, `exec`, `wait`: the commands that stream a container's stdio. */
import { writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { ApiError, readAll } from '../../client/client.js';
import { type Cli, errorMessage, forEach, PROG, StatusError } from '../cli.js';
import { familiarString, parseRef, withDefaultTag } from '../reference.js';
import { consoleSize, forwardSignals, monitorTtySize, type StreamEnd, streamHijacked } from '../streams.js';
import { buildCreate, type CreateRequest } from './createopts.js';
import { pullImage } from './pull.js';

function withHelp(err: unknown, cmd: string): string {
  return `${PROG}: ${errorMessage(err)}\n\nRun '${PROG} ${cmd} --help' for more information`;
}

/** docker's toStatusError: 127 for "not found" start failures, 126 for permission ones, else 125. */
export function runStatusError(err: unknown): StatusError {
  const msg = errorMessage(err);
  if (msg.includes('executable file not found') || msg.includes('no such file or directory'))
    return new StatusError(127, withHelp(err, 'run'));
  if (msg.includes('permission denied') || msg.includes('is a directory'))
    return new StatusError(126, withHelp(err, 'run'));
  return new StatusError(125, withHelp(err, 'run'));
}

function validatePull(v: string, cmd: string): void {
  if (!['always', 'missing', 'never', ''].includes(v))
    throw new StatusError(
      125,
      `${PROG}: invalid pull option: '${v}': must be one of "always", "missing" or "never"\n\nRun '${PROG} ${cmd} --help' for more information`,
    );
}

async function createContainer(cli: Cli, req: CreateRequest, pull: string, quiet: boolean): Promise<string> {
  const image = String(req.body.Image);
  const ref = withDefaultTag(parseRef(image));
  const doPull = async () => {
    await pullImage(cli, ref, process.stderr, { platform: req.platform, quiet });
  };
  if (pull === 'always') await doPull();
  const create = () =>
    cli.client.post<{ Id: string; Warnings?: string[] | null }>(
      '/containers/create',
      { name: req.name, platform: req.platform },
      req.body,
    );
  let res: { Id: string; Warnings?: string[] | null };
  try {
    res = await create();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && pull === 'missing' && /image/i.test(err.message)) {
      process.stderr.write(`Unable to find image '${familiarString(ref)}' locally\n`);
      await doPull();
      res = await create();
    } else throw err;
  }
  for (const w of res.Warnings ?? []) process.stderr.write(`WARNING: ${w}\n`);
  if (req.body.HostConfig?.ContainerIDFile) writeFileSync(req.body.HostConfig.ContainerIDFile, res.Id);
  return res.Id;
}

/** logrus' text format, as the docker CLI prints its logged errors. */
function logError(msg: string): void {
  const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  process.stderr.write(`time="${time}" level=error msg=${JSON.stringify(msg)}\n`);
}

/** Sends `/wait` and resolves once its headers arrived; the inner promise gives the exit status. */
async function waitFor(cli: Cli, id: string, condition?: string): Promise<{ status: Promise<number> }> {
  const res: IncomingMessage = await cli.client.request('POST', `/containers/${id}/wait`, {
    query: { condition },
  });
  const status = (async () => {
    const body = (await readAll(res)).toString('utf8').trim();
    if (!body) return 125;
    const r = JSON.parse(body) as { StatusCode: number; Error?: { Message?: string } | null };
    if (r.Error?.Message) {
      logError(`Error waiting for container: ${r.Error.Message}`);
      return 125;
    }
    return r.StatusCode;
  })().catch((err: Error) => {
    logError(`error waiting for container: ${err.message}`);
    return 125;
  });
  return { status };
}

async function attachTo(
  cli: Cli,
  id: string,
  o: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean; detachKeys?: string },
): Promise<{ end: Promise<StreamEnd> }> {
  const { socket, head } = await cli.client.hijack(`/containers/${id}/attach`, {
    query: {
      stream: true,
      stdin: o.stdin || undefined,
      stdout: o.stdout || undefined,
      stderr: o.stderr || undefined,
      detachKeys: o.detachKeys,
    },
  });
  return { end: streamHijacked(socket, head, o) };
}

export async function run(
  cli: Cli,
  image: string,
  command: string[],
  opts: Record<string, any>,
): Promise<void> {
  validatePull(opts.pull ?? 'missing', 'run');
  const detach = !!opts.detach;
  if (detach && opts.attach?.length)
    throw new StatusError(1, 'conflicting options: cannot specify both --attach and --detach');
  let req: CreateRequest;
  try {
    req = buildCreate(opts, image, command, { detach, console: opts.tty ? consoleSize() : undefined });
    parseRef(image);
  } catch (err) {
    throw new StatusError(125, withHelp(err, 'run'));
  }
  const cfg = req.body;
  if (!detach && cfg.AttachStdin && cfg.Tty && !process.stdin.isTTY)
    throw new StatusError(1, 'the input device is not a TTY');
  let id: string;
  try {
    id = await createContainer(cli, req, opts.pull ?? 'missing', !!opts.quiet);
  } catch (err) {
    throw runStatusError(err);
  }
  if (opts.sigProxy !== false) forwardSignals(cli.client, id);
  const attach = cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr;
  let streamEnd: Promise<StreamEnd> | undefined;
  if (attach) {
    streamEnd = (
      await attachTo(cli, id, {
        stdin: cfg.AttachStdin,
        stdout: cfg.AttachStdout,
        stderr: cfg.AttachStderr,
        tty: cfg.Tty,
        detachKeys: opts.detachKeys,
      })
    ).end;
  }
  const { status } = await waitFor(cli, id, cfg.HostConfig.AutoRemove ? 'removed' : 'next-exit');
  try {
    await cli.client.status('POST', `/containers/${id}/start`);
  } catch (err) {
    if (cfg.HostConfig.AutoRemove) await status.catch(() => 0);
    throw runStatusError(err);
  }
  if (!attach) {
    cli.out(id + '\n');
    return;
  }
  if (cfg.Tty && process.stdout.isTTY) monitorTtySize(cli.client, `/containers/${id}`);
  const first = await Promise.race([streamEnd!.then((e) => ({ e })), status.then((s) => ({ s }))]);
  let code: number;
  if ('e' in first) {
    if (first.e === 'detached') return;
    code = await status;
  } else {
    code = first.s;
    await streamEnd;
  }
  if (code !== 0) throw new StatusError(code);
}

export async function create(
  cli: Cli,
  image: string,
  command: string[],
  opts: Record<string, any>,
): Promise<void> {
  validatePull(opts.pull ?? 'missing', 'create');
  let req: CreateRequest;
  try {
    req = buildCreate(opts, image, command, { console: opts.tty ? consoleSize() : undefined });
    parseRef(image);
  } catch (err) {
    throw new StatusError(125, withHelp(err, 'create'));
  }
  const id = await createContainer(cli, req, opts.pull ?? 'missing', !!opts.quiet);
  cli.out(id + '\n');
}

export async function start(cli: Cli, containers: string[], opts: Record<string, any>): Promise<void> {
  if (!opts.attach && !opts.interactive) {
    const failed: string[] = [];
    for (const c of containers) {
      try {
        await cli.client.status('POST', `/containers/${c}/start`);
        cli.out(c + '\n');
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        cli.err(errorMessage(err) + '\n');
        failed.push(c);
      }
    }
    if (failed.length) throw new StatusError(1, `Error: failed to start containers: ${failed.join(', ')}`);
    return;
  }
  if (containers.length > 1)
    throw new StatusError(1, 'you cannot start and attach multiple containers at once');
  const name = containers[0]!;
  const info = await cli.client.get(`/containers/${name}/json`);
  const id: string = info.Id;
  const tty = !!info.Config?.Tty;
  const stdin = !!opts.interactive && !!info.Config?.OpenStdin;
  if (!tty && opts.sigProxy !== false) forwardSignals(cli.client, id);
  const streamEnd = (
    await attachTo(cli, id, { stdin, stdout: true, stderr: true, tty, detachKeys: opts.detachKeys })
  ).end;
  const { status } = await waitFor(cli, id, 'next-exit');
  await cli.client.status('POST', `/containers/${id}/start`);
  if (tty && process.stdout.isTTY) monitorTtySize(cli.client, `/containers/${id}`);
  const end = await streamEnd;
  if (end === 'detached') return;
  const code = await status;
  if (code !== 0) throw new StatusError(code);
}

export async function attach(cli: Cli, container: string, opts: Record<string, any>): Promise<void> {
  const { status } = await waitFor(cli, container);
  const info = await cli.client.get(`/containers/${container}/json`);
  const state = info.State ?? {};
  if (!state.Running) throw new StatusError(1, 'You cannot attach to a stopped container, start it first');
  if (state.Paused) throw new StatusError(1, 'You cannot attach to a paused container, unpause it first');
  if (state.Restarting)
    throw new StatusError(1, 'You cannot attach to a restarting container, wait until it is running');
  const id: string = info.Id;
  const tty = !!info.Config?.Tty;
  const stdin = opts.stdin !== false && !!info.Config?.OpenStdin;
  if (stdin && tty && !process.stdin.isTTY) throw new StatusError(1, 'the input device is not a TTY');
  if (!tty && opts.sigProxy !== false) forwardSignals(cli.client, id);
  const streamEnd = (
    await attachTo(cli, id, { stdin, stdout: true, stderr: true, tty, detachKeys: opts.detachKeys })
  ).end;
  if (tty && process.stdout.isTTY) monitorTtySize(cli.client, `/containers/${id}`);
  const end = await streamEnd;
  if (end === 'detached') return;
  const code = await status;
  if (code !== 0) throw new StatusError(code);
}

export async function exec(
  cli: Cli,
  container: string,
  command: string[],
  opts: Record<string, any>,
): Promise<void> {
  const detach = !!opts.detach;
  const tty = !!opts.tty;
  const stdin = !!opts.interactive && !detach;
  if (stdin && tty && !process.stdin.isTTY) throw new StatusError(1, 'the input device is not a TTY');
  const size = tty ? consoleSize() : undefined;
  const env: string[] = (opts.env ?? []).map((e: string) =>
    e.includes('=') || process.env[e] === undefined ? e : `${e}=${process.env[e]}`,
  );
  const body: Record<string, any> = {
    User: opts.user ?? '',
    Privileged: !!opts.privileged,
    Tty: tty,
    ...(size ? { ConsoleSize: [size.rows, size.cols] } : {}),
    AttachStdin: stdin,
    AttachStderr: !detach,
    AttachStdout: !detach,
    Detach: detach,
    DetachKeys: opts.detachKeys ?? '',
    Env: env.length ? env : null,
    WorkingDir: opts.workdir ?? '',
    Cmd: command,
  };
  const { Id: execId } = await cli.client.post<{ Id: string }>(
    `/containers/${container}/exec`,
    undefined,
    body,
  );
  if (detach) {
    await cli.client.status('POST', `/exec/${execId}/start`, { body: { Detach: true, Tty: tty } });
    return;
  }
  const { socket, head } = await cli.client.hijack(`/exec/${execId}/start`, {
    body: { Detach: false, Tty: tty, ...(size ? { ConsoleSize: [size.rows, size.cols] } : {}) },
  });
  const streamEnd = streamHijacked(socket, head, {
    stdin,
    stdout: true,
    stderr: true,
    tty,
    detachKeys: opts.detachKeys,
  });
  if (tty && process.stdout.isTTY) monitorTtySize(cli.client, `/exec/${execId}`);
  const end = await streamEnd;
  if (end === 'detached') return;
  const info = await cli.client.get<{ ExitCode?: number | null; Running?: boolean }>(`/exec/${execId}/json`);
  const code = info.ExitCode ?? 0;
  if (code !== 0) throw new StatusError(code);
}

export async function wait(cli: Cli, containers: string[]): Promise<void> {
  await forEach(cli, containers, async (c) => {
    const r = await cli.client.post<{ StatusCode: number; Error?: { Message?: string } | null }>(
      `/containers/${c}/wait`,
    );
    if (r.Error?.Message) throw new StatusError(1, r.Error.Message);
    return String(r.StatusCode);
  });
}
