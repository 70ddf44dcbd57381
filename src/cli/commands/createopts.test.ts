import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from '../args.js';
import { addCreateOptions, buildCreate, parseMount, parsePortSpec } from './createopts.js';

async function parse(argv: string[]): Promise<{ image: string; args: string[]; opts: Record<string, any> }> {
  let out: { image: string; args: string[]; opts: Record<string, any> } | undefined;
  const program = new Command('x');
  addCreateOptions(
    program
      .command('run')
      .passThroughOptions()
      .option('-d, --detach')
      .argument('<image>')
      .argument('[command...]'),
  ).action((image: string, args: string[], opts: Record<string, any>) => {
    out = { image, args, opts };
  });
  await program.parseAsync(['run', ...argv]);
  return out!;
}

test('docker-style parsing: combined short flags, repeated options, options after the image belong to the command', async () => {
  const p = await parse([
    '-it',
    '--rm',
    '-e',
    'A=1',
    '--env=B=2',
    '-p',
    '127.0.0.1:8080:80',
    'busybox',
    'sh',
    '-c',
    'echo --rm -e X',
  ]);
  assert.equal(p.image, 'busybox');
  assert.deepEqual(p.args, ['sh', '-c', 'echo --rm -e X']);
  const r = buildCreate(p.opts, p.image, p.args, {});
  assert.equal(r.body.Tty, true);
  assert.equal(r.body.OpenStdin, true);
  assert.equal(r.body.AttachStdin, true);
  assert.equal(r.body.StdinOnce, true);
  assert.deepEqual(r.body.Env, ['A=1', 'B=2']);
  assert.equal(r.body.HostConfig.AutoRemove, true);
  assert.deepEqual(r.body.ExposedPorts, { '80/tcp': {} });
  assert.deepEqual(r.body.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] });
});

test('create body fields as the docker CLI sends them', async () => {
  const p = await parse([
    '-d',
    '--name',
    'web',
    '-m',
    '64m',
    '--cpus',
    '0.5',
    '--restart',
    'on-failure:3',
    '--cap-add',
    'net_admin',
    '--ulimit',
    'nofile=10:20',
    '-v',
    '/tmp:/data:ro',
    '-v',
    '/anon',
    '--tmpfs',
    '/run:size=1m',
    '--health-cmd',
    'true',
    '--health-interval',
    '2s',
    '--init',
    '--entrypoint',
    'sh',
    '--stop-signal',
    'SIGINT',
    '--stop-timeout',
    '3',
    '-l',
    'a=b',
    '--add-host',
    'h:1.2.3.4',
    '--network',
    'none',
    '--pids-limit',
    '10',
    '--read-only',
    '--security-opt',
    'no-new-privileges',
    'busybox',
  ]);
  const r = buildCreate(p.opts, p.image, p.args, { detach: true });
  const h = r.body.HostConfig;
  assert.equal(r.name, 'web');
  assert.equal(r.body.AttachStdout, false);
  assert.equal(h.Memory, 67108864);
  assert.equal(h.NanoCpus, 500000000);
  assert.deepEqual(h.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.deepEqual(h.CapAdd, ['CAP_NET_ADMIN']);
  assert.deepEqual(h.Ulimits, [{ Name: 'nofile', Hard: 20, Soft: 10 }]);
  assert.deepEqual(h.Binds, ['/tmp:/data:ro']);
  assert.deepEqual(r.body.Volumes, { '/anon': {} });
  assert.deepEqual(h.Tmpfs, { '/run': 'size=1m' });
  assert.deepEqual(r.body.Healthcheck.Test, ['CMD-SHELL', 'true']);
  assert.equal(r.body.Healthcheck.Interval, 2e9);
  assert.equal(h.Init, true);
  assert.deepEqual(r.body.Entrypoint, ['sh']);
  assert.equal(r.body.Cmd, null);
  assert.equal(r.body.StopSignal, 'SIGINT');
  assert.equal(r.body.StopTimeout, 3);
  assert.deepEqual(r.body.Labels, { a: 'b' });
  assert.deepEqual(h.ExtraHosts, ['h:1.2.3.4']);
  assert.equal(h.NetworkMode, 'none');
  assert.equal(h.PidsLimit, 10);
  assert.equal(h.ReadonlyRootfs, true);
  assert.deepEqual(h.SecurityOpt, ['no-new-privileges']);
});

test('port specs with ranges, udp and ephemeral host ports', () => {
  assert.deepEqual(parsePortSpec('8080').bindings, { '8080/tcp': [{ HostIp: '', HostPort: '' }] });
  assert.deepEqual(parsePortSpec('127.0.0.1::53/udp').bindings, {
    '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
  });
  assert.deepEqual(parsePortSpec('8000-8001:80-81').exposed, ['80/tcp', '81/tcp']);
  assert.equal(parsePortSpec('8000-8001:80-81').bindings['81/tcp']![0]!.HostPort, '8001');
  assert.deepEqual(parsePortSpec('[::1]:8080:80').bindings['80/tcp'], [{ HostIp: '::1', HostPort: '8080' }]);
  assert.throws(() => parsePortSpec('a:b:c:d'));
});

test('--mount parsing', () => {
  assert.deepEqual(parseMount('type=bind,source=/x,target=/y,readonly'), {
    Type: 'bind',
    Source: '/x',
    Target: '/y',
    ReadOnly: true,
  });
  assert.deepEqual(parseMount('type=tmpfs,dst=/t,tmpfs-size=1m'), {
    Type: 'tmpfs',
    Target: '/t',
    TmpfsOptions: { SizeBytes: 1048576 },
  });
  assert.throws(() => parseMount('type=volume,source=v'), /target is required/);
});
