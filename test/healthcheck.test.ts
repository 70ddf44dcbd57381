/**
 * Healthchecks through the real docker CLI against a real berthd: --health-* flags, an image's
 * HEALTHCHECK and --no-healthcheck, retries, timeout, start period, the last 5 results,
 * health_status events, `(healthy)` in ps and the health= filter, and probing resumed after a
 * daemon restart. Every wait is for a state (polled), never a fixed sleep.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
});

async function ok(...args: string[]): Promise<string> {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
async function health(name: string): Promise<Health | null> {
  return JSON.parse(await ok('inspect', '--format', '{{json .State.Health}}', name));
}
async function waitHealth(name: string, what: string, pred: (h: Health) => boolean, ms = 30_000): Promise<Health> {
  const end = Date.now() + ms;
  for (;;) {
    const h = await health(name);
    if (h && pred(h)) return h;
    if (Date.now() > end) throw new Error(`${name}: timed out waiting for ${what}; last: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('flags: unhealthy after the retries, healthy again after one success; ps, filter, events', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  await ok('run', '-d', '--name', 'hc', '--network', 'none', '--health-cmd', 'echo probing; test -f /tmp/ok', '--health-interval', '100ms', '--health-retries', '2', 'busybox', 'sleep', '300');
  const bad = await waitHealth('hc', 'unhealthy', (h) => h.Status === 'unhealthy');
  assert.ok(bad.FailingStreak >= 2, JSON.stringify(bad));
  assert.deepEqual({ code: bad.Log.at(-1)!.ExitCode, out: bad.Log.at(-1)!.Output }, { code: 1, out: 'probing\n' });
  assert.equal((await ok('ps', '--filter', 'health=unhealthy', '--format', '{{.Names}}')).trim(), 'hc');
  await waitHealth('hc', 'five results kept', (h) => h.FailingStreak >= 6);
  assert.equal((await health('hc'))!.Log.length, 5);
  await ok('exec', 'hc', 'touch', '/tmp/ok');
  const good = await waitHealth('hc', 'healthy', (h) => h.Status === 'healthy');
  assert.equal(good.FailingStreak, 0);
  assert.match(await ok('ps', '--filter', 'name=hc', '--format', '{{.Status}}'), /^Up .* \(healthy\)\n$/);
  assert.equal((await ok('ps', '--filter', 'health=healthy', '--format', '{{.Names}}')).trim(), 'hc');
  assert.equal((await ok('ps', '--filter', 'health=unhealthy', '--format', '{{.Names}}')).trim(), '');
  const until = Math.floor(Date.now() / 1000) + 1;
  const events = await ok('events', '--since', String(since), '--until', String(until), '--filter', 'container=hc', '--filter', 'event=health_status', '--format', '{{.Action}}');
  assert.deepEqual(events.trim().split('\n'), ['health_status: unhealthy', 'health_status: healthy']);
  await ok('rm', '-f', 'hc');
});

test("an image's HEALTHCHECK, merged flags, and --no-healthcheck", async () => {
  await ok('create', '--name', 'hc-src', '--network', 'none', 'busybox', 'true');
  await ok('commit', '--change', 'HEALTHCHECK --interval=100ms CMD echo from-image', 'hc-src', 'clients/hc:1');
  await ok('rm', 'hc-src');
  await ok('run', '-d', '--name', 'hc-img', '--network', 'none', 'clients/hc:1', 'sleep', '300');
  const h = await waitHealth('hc-img', 'healthy', (x) => x.Status === 'healthy');
  assert.equal(h.Log[0].Output, 'from-image\n');
  // Only the retries given: the image's test and interval stay.
  await ok('run', '-d', '--name', 'hc-merged', '--network', 'none', '--health-retries', '7', 'clients/hc:1', 'sleep', '300');
  const merged = JSON.parse(await ok('inspect', '--format', '{{json .Config.Healthcheck}}', 'hc-merged'));
  assert.deepEqual(merged.Test, ['CMD-SHELL', 'echo from-image']);
  assert.equal(merged.Interval, 100_000_000);
  assert.equal(merged.Retries, 7);
  await ok('run', '-d', '--name', 'hc-none', '--network', 'none', '--no-healthcheck', 'clients/hc:1', 'sleep', '300');
  assert.equal(await health('hc-none'), null);
  assert.match(await ok('ps', '--filter', 'name=hc-none', '--format', '{{.Status}}'), /^Up [^(]*\n$/);
  await ok('rm', '-f', 'hc-img', 'hc-merged', 'hc-none');
  await ok('rmi', 'clients/hc:1');
});

test('timeout: the probe is killed and recorded with exit code -1', async () => {
  await ok('run', '-d', '--name', 'hc-slow', '--network', 'none', '--health-cmd', 'sleep 30', '--health-timeout', '100ms', '--health-interval', '100ms', '--health-retries', '1', 'busybox', 'sleep', '300');
  const h = await waitHealth('hc-slow', 'unhealthy', (x) => x.Status === 'unhealthy');
  assert.deepEqual({ code: h.Log[0].ExitCode, out: h.Log[0].Output }, { code: -1, out: 'Health check exceeded timeout (100ms)' });
  await ok('rm', '-f', 'hc-slow');
});

test('start period: failures do not count, probes run at the start interval', async () => {
  await ok('run', '-d', '--name', 'hc-start', '--network', 'none', '--health-cmd', 'false', '--health-start-period', '1h', '--health-start-interval', '100ms', '--health-interval', '1h', '--health-retries', '1', 'busybox', 'sleep', '300');
  const h = await waitHealth('hc-start', 'three probes', (x) => x.Log.length >= 3);
  assert.equal(h.Status, 'starting');
  assert.equal(h.FailingStreak, 0);
  assert.match(await ok('ps', '--filter', 'name=hc-start', '--format', '{{.Status}}'), /\(health: starting\)/);
  await ok('rm', '-f', 'hc-start');
});

test('probing resumes after a daemon restart', async () => {
  await ok('run', '-d', '--name', 'hc-live', '--network', 'none', '--health-cmd', 'true', '--health-interval', '100ms', 'busybox', 'sleep', '300');
  await waitHealth('hc-live', 'healthy', (x) => x.Status === 'healthy');
  await d.restart();
  const restarted = new Date().toISOString();
  const h = await waitHealth('hc-live', 'a probe after the restart', (x) => x.Log.at(-1)!.Start > restarted);
  assert.equal(h.Status, 'healthy');
  await ok('rm', '-f', 'hc-live');
});
