/**
 * docker-compose (Debian's 1.29.2, on docker-py 5.0.3) against a real berthd: one project with a
 * user network, a named volume shared by two services, a healthcheck another service waits for
 * (`depends_on: condition: service_healthy`), a port on 127.0.0.1, environment and restart
 * policies, driven through up, ps, logs, exec, run --rm, --scale, stop/start and down -v.
 * Images are never pulled: every service uses the local `busybox` with `pull_policy: never`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { type RunResult, runCmd } from './helpers/run.js';

const PROJECT = 'clientsproj';
const COMPOSE_FILE = `
services:
  db:
    image: busybox
    pull_policy: never
    command: ["sh", "-c", "echo db-up; echo from-db > /shared/index.html; exec httpd -f -p 80 -h /shared"]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O - http://127.0.0.1/index.html | grep -q from-db"]
      interval: 1s
      timeout: 10s
      retries: 60
    volumes: ["shared:/shared"]
    networks: [back]
    restart: unless-stopped
  web:
    image: busybox
    pull_policy: never
    command: ["sh", "-c", "echo web-up greeting=$$GREETING; exec httpd -f -p 8080 -h /shared"]
    environment:
      GREETING: hello
    ports: ["127.0.0.1::8080"]
    depends_on:
      db:
        condition: service_healthy
    volumes: ["shared:/shared"]
    networks: [back]
    restart: unless-stopped
  worker:
    image: busybox
    pull_policy: never
    command: ["sleep", "300"]
    networks: [back]
volumes:
  shared: {}
networks:
  back: {}
`;

let d: TestDaemon;
let dir: string;
before(async () => {
  d = await startDaemon();
  dir = mkdtempSync(path.join(tmpdir(), 'berth-compose-'));
  writeFileSync(path.join(dir, 'docker-compose.yml'), COMPOSE_FILE);
});
after(async () => {
  if (d && dir) await compose('down', '-v', '--timeout', '1').catch(() => {});
  await d?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Compose's default path for run/exec: the docker CLI (attach, then start). With
// COMPOSE_INTERACTIVE_NO_CLI, Compose 1.29 (dockerpty) attaches only after the start, so the output
// of a one-off container that ends first is lost against any engine: a race, not a test.
function compose(...args: string[]): Promise<RunResult> {
  return runCmd('docker-compose', ['-p', PROJECT, ...args], { cwd: dir, env: d.env(), timeoutMs: 120_000 });
}
async function ok(...args: string[]): Promise<string> {
  const r = await compose(...args);
  assert.equal(r.code, 0, `docker-compose ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
/** The project's containers' states as `docker ps` prints them, by name. */
async function states(): Promise<Record<string, string>> {
  const r = await d.docker(['ps', '-a', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--format', '{{.Names}}\t{{.Status}}']);
  assert.equal(r.code, 0, r.stderr);
  return Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t')));
}

test('up -d: the web service starts once db is healthy; ps shows (healthy)', async () => {
  await ok('up', '-d');
  const s = await states();
  assert.match(s[`${PROJECT}_db_1`], /^Up .*\(healthy\)$/);
  assert.match(s[`${PROJECT}_web_1`], /^Up /);
  assert.match(s[`${PROJECT}_worker_1`], /^Up /);
  const ps = await ok('ps');
  assert.match(ps, new RegExp(`${PROJECT}_db_1 .* Up \\(healthy\\)`));
});

test('ports on 127.0.0.1 and the shared named volume', async () => {
  const port = (await ok('port', 'web', '8080')).trim();
  assert.match(port, /^127\.0\.0\.1:\d+$/);
  const res = await fetch(`http://${port}/index.html`);
  assert.equal(await res.text(), 'from-db\n', 'web serves what db wrote into the shared volume');
});

test('exec with the service environment; run --rm resolves services by name', async () => {
  assert.equal(await ok('exec', '-T', 'web', 'sh', '-c', 'echo $GREETING'), 'hello\n');
  const out = await ok('run', '--rm', '-T', 'worker', 'wget', '-q', '-O', '-', 'http://db/index.html');
  assert.match(out, /from-db/);
  assert.deepEqual(Object.keys(await states()).sort(), [`${PROJECT}_db_1`, `${PROJECT}_web_1`, `${PROJECT}_worker_1`], 'run --rm left nothing');
});

test('logs of every service', async () => {
  const out = await ok('logs', '--no-color');
  assert.match(out, /db_1 +\| db-up/);
  assert.match(out, /web_1 +\| web-up greeting=hello/);
});

test('up --scale worker=3: the service name resolves to all three', async () => {
  await ok('up', '-d', '--scale', 'worker=3');
  const ips: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const r = await d.docker(['inspect', '--format', '{{(index .NetworkSettings.Networks "clientsproj_back").IPAddress}}', `${PROJECT}_worker_${i}`]);
    assert.equal(r.code, 0, r.stderr);
    ips.push(r.stdout.trim());
  }
  const lookup = await ok('exec', '-T', 'web', 'nslookup', 'worker');
  for (const ip of ips) assert.ok(lookup.includes(ip), `${ip} in:\n${lookup}`);
});

test('stop and start: containers and health come back; logs kept across the restart', async () => {
  await ok('stop', '--timeout', '1');
  for (const [name, st] of Object.entries(await states())) assert.match(st, /^Exited /, name);
  await ok('start');
  const s = await states();
  for (const name of [`${PROJECT}_db_1`, `${PROJECT}_web_1`]) assert.match(s[name], /^Up /, name);
  const out = await ok('logs', '--no-color', 'db');
  assert.equal(out.match(/db-up/g)?.length, 2, out);
});

test('down -v leaves nothing behind', async () => {
  await ok('down', '-v', '--timeout', '1');
  const [ps, vols, nets] = await Promise.all([
    d.docker(['ps', '-aq']),
    d.docker(['volume', 'ls', '-q']),
    d.docker(['network', 'ls', '--format', '{{.Name}}']),
  ]);
  assert.equal(ps.stdout.trim(), '');
  assert.equal(vols.stdout.trim(), '');
  assert.deepEqual(nets.stdout.trim().split('\n').sort(), ['bridge', 'host', 'none']);
});
