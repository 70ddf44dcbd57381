/** `docker exec`: create a session, start it over a hijacked connection, read its exit code. */
import type { ExecConfig } from '../../containers/exec.js';
import { conflict } from '../../util/errors.js';
import type { Ctx } from '../context.js';
import { json, readBody } from '../http.js';
import type { Router } from '../router.js';
import { hijack } from '../streams.js';
import { parseTyped, readTyped } from '../validate/body.js';
import { execOptions, execStartCheck } from '../validate/engine-types.js';
import { qTermSize } from '../validate/query.js';

async function create(ctx: Ctx): Promise<void> {
  const cfg = await readTyped<ExecConfig>(ctx, execOptions);
  json(ctx, 201, { Id: ctx.services.containers.exec.create(ctx.params.id, cfg) });
}

interface StartBody {
  Detach?: boolean;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
}

/** In an upgrade request the JSON body is not parsed by Node: it is the first Content-Length bytes. */
async function upgradeBody(ctx: Ctx): Promise<{ body: StartBody; rest: Buffer }> {
  const { socket, head } = ctx.upgrade!;
  const te = String(ctx.req.headers['transfer-encoding'] ?? '');
  let buf = head;
  if (/chunked/i.test(te)) {
    // dockerode sends an empty chunked body: `0\r\n\r\n`.
    while (!buf.includes('\r\n\r\n') && buf.length < 65536) buf = Buffer.concat([buf, await nextChunk(socket)]);
    const end = buf.indexOf('0\r\n\r\n');
    const text = buf.subarray(0, end >= 0 ? end : buf.length).toString();
    const jsonStart = text.indexOf('{');
    const body = jsonStart >= 0 ? parseTyped<StartBody>(text.slice(jsonStart, text.lastIndexOf('}') + 1), execStartCheck, {}) : {};
    return { body, rest: buf.subarray(end >= 0 ? end + 5 : buf.length) };
  }
  const len = Number(ctx.req.headers['content-length'] ?? 0);
  while (buf.length < len) buf = Buffer.concat([buf, await nextChunk(socket)]);
  const text = buf.subarray(0, len).toString().trim();
  return { body: parseTyped<StartBody>(text, execStartCheck, {}), rest: buf.subarray(len) };
}

function nextChunk(socket: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer) => {
      cleanup();
      socket.pause();
      resolve(b);
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('connection closed'));
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.resume();
  });
}

async function start(ctx: Ctx): Promise<void> {
  const execs = ctx.services.containers.exec;
  let body: StartBody;
  let rest: Buffer = Buffer.alloc(0);
  if (ctx.upgrade) ({ body, rest } = await upgradeBody(ctx));
  else {
    const raw = (await readBody(ctx.req)).toString().trim();
    body = parseTyped<StartBody>(raw, execStartCheck, {});
  }
  const session = execs.get(ctx.params.id);
  // Checked before anything else, and before the connection is hijacked: a 409 as dockerd answers.
  if (session.started) throw conflict(`Error: Exec command ${session.ID} has already run`);
  if (body.Detach) {
    await execs.start(ctx.params.id, { detach: true, tty: body.Tty, consoleSize: body.ConsoleSize });
    if (ctx.res) json(ctx, 200, {});
    else ctx.upgrade!.socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{}\n');
    return;
  }
  // Validate before hijacking, so errors are plain HTTP answers.
  const c = ctx.services.containers.get(session.ContainerID);
  if (!c.State.Running) {
    throw conflict(`container ${c.Id} is not running`);
  }
  const tty = body.Tty ?? Boolean(session.ProcessConfig.tty);
  const { socket } = hijack(ctx, !tty);
  // Bytes past the JSON body (already read from the upgrade) are the first stdin bytes.
  await execs.start(ctx.params.id, { detach: false, tty, consoleSize: body.ConsoleSize }, { socket, head: rest });
}

async function resize(ctx: Ctx): Promise<void> {
  await ctx.services.containers.exec.resize(ctx.params.id, qTermSize(ctx.query, 'h'), qTermSize(ctx.query, 'w'));
  json(ctx, 200, {});
}

export function registerExecRoutes(router: Router): void {
  router.post('/containers/{id}/exec', create);
  router.post('/exec/{id}/start', start);
  router.post('/exec/{id}/resize', resize);
  router.get('/exec/{id}/json', (ctx) => json(ctx, 200, ctx.services.containers.exec.inspect(ctx.params.id)));
}
