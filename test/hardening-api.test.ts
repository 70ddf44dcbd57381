/**
 * Bad input never bricks berthd: every malformed request gets a 4xx answer (never a hang, a dropped
 * connection or a 500), bodies are checked against the Engine API's types before anything is
 * stored, and lists survive a bad record already on disk.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { apiRequest, rawExchange } from './helpers/raw-api.js';

let d: TestDaemon;
let running: string;
before(async () => {
  d = await startDaemon();
  const r = await d.docker(['run', '-d', '--network', 'none', 'busybox', 'sleep', '600']);
  assert.equal(r.code, 0, r.stderr);
  running = r.stdout.trim();
});
after(async () => {
  await d?.destroy();
});

const api = (method: string, p: string, body?: unknown, headers?: Record<string, string>) =>
  apiRequest(
    d.socket,
    method,
    p,
    body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    headers,
  );
const message = (body: string) => (JSON.parse(body) as { message: string }).message;

describe('requests that are not well-formed', () => {
  test('a bad percent escape in the path is a 400', async () => {
    const r = await api('GET', '/v1.50/containers/%zz/json');
    assert.equal(r.status, 400);
    assert.match(message(r.body), /invalid URL escape "%zz"/);
  });

  test('malformed HTTP is answered 400, oversized headers 431', async () => {
    const bad = await rawExchange(d.socket, 'THIS IS NOT HTTP\r\n\r\n');
    assert.match(bad, /^HTTP\/1\.1 400 Bad Request/);
    const big = await rawExchange(
      d.socket,
      `GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
    );
    assert.match(big, /^HTTP\/1\.1 431 /);
    assert.equal((await api('GET', '/_ping')).status, 200);
  });

  test('exec: a body that is not JSON or has wrong types is a 400; a second start is a 409', async () => {
    const bad = await api('POST', `/v1.50/containers/${running}/exec`, { Cmd: ['true'], WorkingDir: 5 });
    assert.equal(bad.status, 400);
    assert.equal(
      message(bad.body),
      'invalid JSON: json: cannot unmarshal number into Go struct field ExecOptions.WorkingDir of type string',
    );
    const created = await api('POST', `/v1.50/containers/${running}/exec`, { Cmd: ['true'] });
    assert.equal(created.status, 201, created.body);
    const id = (JSON.parse(created.body) as { Id: string }).Id;
    const notJson = await api('POST', `/v1.50/exec/${id}/start`, '{not json');
    assert.equal(notJson.status, 400);
    const first = await api('POST', `/v1.50/exec/${id}/start`, { Detach: true });
    assert.equal(first.status, 200, first.body);
    // The second start asks for an upgrade as the docker CLI does: answered as plain HTTP, not hijacked.
    const second = await rawExchange(
      d.socket,
      `POST /v1.50/exec/${id}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    );
    assert.match(second, /^HTTP\/1\.1 409 /);
    assert.match(second, /has already run/);
  });

  test('network connect with Container: 5 is a 400', async () => {
    const r = await api('POST', '/v1.50/networks/bridge/connect', { Container: 5 });
    assert.equal(r.status, 400);
    assert.match(message(r.body), /ConnectOptions\.Container of type string/);
  });

  test('stop?t= must be an integer; a huge one does not kill at once', async () => {
    for (const t of ['1e20', 'abc', '1.5', '-5']) {
      const r = await api('POST', `/v1.50/containers/${running}/stop?t=${t}`);
      assert.equal(r.status, 400, `t=${t}: ${r.body}`);
    }
    const inspect = await d.docker(['inspect', '-f', '{{.State.Running}}', running]);
    assert.equal(inspect.stdout.trim(), 'true');
  });

  test('resize sizes must fit a terminal', async () => {
    for (const q of ['h=1e20&w=80', 'h=24&w=-1', 'h=70000&w=80', 'h=x&w=80']) {
      const r = await api('POST', `/v1.50/containers/${running}/resize?${q}`);
      assert.equal(r.status, 400, `${q}: ${r.body}`);
    }
  });
});

describe('bodies checked against the Engine API types before anything is stored', () => {
  const bad: [string, string, unknown, RegExp][] = [
    [
      'POST',
      '/v1.50/containers/create',
      { Image: 'busybox', Labels: { a: 1 } },
      /CreateRequest\.Labels of type string/,
    ],
    [
      'POST',
      '/v1.50/containers/create',
      { Image: 'busybox', HostConfig: { Memory: '1g' } },
      /HostConfig\.HostConfig\.Memory of type int64/,
    ],
    [
      'POST',
      '/v1.50/containers/create',
      { Image: 'busybox', Env: 'A=1' },
      /CreateRequest\.Env of type \[\]string/,
    ],
    ['POST', '/v1.50/containers/create', [1, 2], /Go value of type CreateRequest/],
    [
      'POST',
      '/v1.50/containers/create',
      { Image: 'busybox', HostConfig: { PortBindings: { '80/tcp': [{ HostPort: 80 }] } } },
      /PortBinding/,
    ],
    ['POST', '/v1.50/networks/create', { Name: 5 }, /CreateRequest\.Name of type string/],
    ['POST', '/v1.50/networks/create', { Name: 'n', Labels: { a: true } }, /Labels of type string/],
    ['POST', '/v1.50/volumes/create', { Name: 'v', DriverOpts: { size: 5 } }, /DriverOpts of type string/],
    ['POST', `/v1.50/containers/{running}/update`, { Memory: 'x' }, /UpdateConfig\.Memory of type int64/],
  ];
  for (const [method, p, body, want] of bad) {
    test(`${p} ${JSON.stringify(body)}`, async () => {
      const r = await api(method, p.replace('{running}', running), body);
      assert.equal(r.status, 400, r.body);
      assert.match(message(r.body), want);
    });
  }

  test('nothing was stored, and every list still works', async () => {
    const ps = await d.docker(['ps', '-a', '--format', '{{.ID}}']);
    assert.equal(ps.code, 0, ps.stderr);
    assert.equal(ps.stdout.trim().split('\n').length, 1);
    for (const args of [
      ['network', 'ls'],
      ['volume', 'ls'],
    ]) {
      const r = await d.docker(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    const names = await d.docker(['network', 'ls', '--format', '{{.Name}}']);
    assert.deepEqual(names.stdout.trim().split('\n').sort(), ['bridge', 'host', 'none']);
  });

  test('a network named "5" (a string) is fine, as in Docker', async () => {
    const c = await d.docker(['network', 'create', '--subnet', '10.231.5.0/24', '5']);
    assert.equal(c.code, 0, c.stderr);
    const ls = await d.docker(['network', 'ls', '--format', '{{.Name}}']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.ok(ls.stdout.split('\n').includes('5'));
    assert.equal((await d.docker(['network', 'rm', '5'])).code, 0);
  });
});

describe('a bad record already on disk', () => {
  test('is skipped in lists and logged, not deleted; the others are listed', async () => {
    const made = await d.docker(['create', '--name', 'victim', 'busybox', 'true']);
    assert.equal(made.code, 0, made.stderr);
    const victim = made.stdout.trim();
    await d.stop();
    // An older berthd stored a number as a label value; another record is not JSON at all.
    const file = path.join(d.dataRoot, 'containers', victim, 'config.v2.json');
    const rec = JSON.parse(readFileSync(file, 'utf8'));
    rec.Config.Labels = { a: 1 };
    writeFileSync(file, JSON.stringify(rec));
    const garbled = 'f'.repeat(64);
    mkdirSync(path.join(d.dataRoot, 'containers', garbled));
    writeFileSync(path.join(d.dataRoot, 'containers', garbled, 'config.v2.json'), '{"Id": "ff');
    await d.start();
    const ps = await d.docker(['ps', '-a', '--format', '{{.ID}}']);
    assert.equal(ps.code, 0, ps.stderr);
    assert.deepEqual(ps.stdout.trim().split('\n'), [running.slice(0, 12)]);
    assert.match(d.logs, /container record skipped in lists/);
    assert.ok(
      readdirSync(path.join(d.dataRoot, 'containers')).includes(garbled),
      'the unreadable record is kept',
    );
    // The skipped container can still be removed by name.
    const rm = await d.docker(['rm', 'victim']);
    assert.equal(rm.code, 0, rm.stderr);
  });

  test('a network state with a numeric name, or not JSON at all, does not stop the start', async () => {
    const file = path.join(d.dataRoot, 'network', 'state.json');
    await d.stop();
    const state = JSON.parse(readFileSync(file, 'utf8'));
    state.networks.push({
      ...state.networks.find((n: { Name: string }) => n.Name === 'none'),
      Name: 5,
      Id: 'f'.repeat(64),
    });
    writeFileSync(file, JSON.stringify(state));
    await d.start();
    const ls = await d.docker(['network', 'ls', '--format', '{{.Name}}']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.stdout.trim().split('\n').sort(), ['bridge', 'host', 'none']);
    await d.stop();
    writeFileSync(file, '{"networks": [');
    await d.start();
    const again = await d.docker(['network', 'ls', '--format', '{{.Name}}']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.stdout.trim().split('\n').sort(), ['bridge', 'host', 'none']);
    assert.ok(
      readdirSync(path.dirname(file)).some((f) => f.startsWith('state.json.unreadable-')),
      'the bad file is kept',
    );
    const ps = await d.docker(['ps', '--format', '{{.ID}}']);
    assert.equal(ps.stdout.trim(), running.slice(0, 12));
  });

  test('a record without the fields every path reads is skipped at load, not fatal', async () => {
    const made = await d.docker(['create', '--name', 'hollow', 'busybox', 'true']);
    assert.equal(made.code, 0, made.stderr);
    const id = made.stdout.trim();
    await d.stop();
    const file = path.join(d.dataRoot, 'containers', id, 'config.v2.json');
    const rec = JSON.parse(readFileSync(file, 'utf8'));
    delete rec.HostConfig;
    writeFileSync(file, JSON.stringify(rec));
    await d.start();
    const ps = await d.docker(['ps', '-a', '--format', '{{.Names}}']);
    assert.equal(ps.code, 0, ps.stderr);
    assert.ok(!ps.stdout.includes('hollow'));
    assert.match(d.logs, /container record without the fields berthd needs skipped/);
    assert.ok(existsSync(file), 'kept on disk');
  });
});
