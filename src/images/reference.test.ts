import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyChanges } from './changes.js';
import { familiar, matchesReferenceFilter, parseReference, qualified, refKey } from '../util/reference.js';

test('references normalise to the familiar form', () => {
  assert.equal(refKey('busybox'), 'busybox:latest');
  assert.equal(refKey('docker.io/library/busybox'), 'busybox:latest');
  assert.equal(refKey('index.docker.io/library/busybox:1'), 'busybox:1');
  assert.equal(refKey('docker.io/u/x:2'), 'u/x:2');
  assert.equal(refKey('127.0.0.1:5000/team/app:v1'), '127.0.0.1:5000/team/app:v1');
  assert.equal(refKey('localhost/app'), 'localhost/app:latest');
  const d = `sha256:${'a'.repeat(64)}`;
  assert.equal(refKey(`busybox@${d}`), `busybox@${d}`);
  assert.equal(familiar(parseReference('127.0.0.1:5000/app')), '127.0.0.1:5000/app');
  assert.equal(qualified(parseReference('busybox:1')), 'docker.io/library/busybox:1');
  assert.equal(qualified(parseReference('u/x:1')), 'docker.io/u/x:1');
  assert.equal(qualified(parseReference('127.0.0.1:5000/app:1')), '127.0.0.1:5000/app:1');
  assert.throws(() => parseReference('Busybox'), /must be lowercase/);
  assert.throws(() => parseReference('a b'), /invalid reference format/);
  assert.throws(() => parseReference('x:'), /invalid reference format/);
  assert.throws(() => parseReference(''), /invalid reference format/);
});

test('reference filter globs', () => {
  assert.ok(matchesReferenceFilter('busybox', 'busybox:latest'));
  assert.ok(matchesReferenceFilter('busy*', 'busybox:latest'));
  assert.ok(matchesReferenceFilter('busybox:latest', 'busybox:latest'));
  assert.ok(!matchesReferenceFilter('busybox:1', 'busybox:latest'));
  assert.ok(matchesReferenceFilter('team/*:v*', 'team/app:v1'));
  assert.ok(!matchesReferenceFilter('app', 'team/app:v1'));
});

test('--change instructions', () => {
  const c = applyChanges({ Env: ['PATH=/bin'] }, [
    'CMD ["sh", "-c", "echo hi"]',
    'ENTRYPOINT /bin/run',
    'ENV A=1 B="two words"',
    'ENV PATH /usr/bin',
    'LABEL x=y',
    'EXPOSE 80 53/udp',
    'VOLUME /data',
    'WORKDIR /srv',
    'USER 1000:1000',
    'STOPSIGNAL SIGINT',
    'HEALTHCHECK --interval=5s CMD true',
  ]);
  assert.deepEqual(c.Cmd, ['sh', '-c', 'echo hi']);
  assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c', '/bin/run']);
  assert.deepEqual(c.Env, ['PATH=/usr/bin', 'A=1', 'B=two words']);
  assert.deepEqual(c.Labels, { x: 'y' });
  assert.deepEqual(c.ExposedPorts, { '80/tcp': {}, '53/udp': {} });
  assert.deepEqual(c.Volumes, { '/data': {} });
  assert.equal(c.WorkingDir, '/srv');
  assert.equal(c.User, '1000:1000');
  assert.equal(c.StopSignal, 'SIGINT');
  assert.deepEqual(c.Healthcheck, { Interval: 5e9, Test: ['CMD-SHELL', 'true'] });
  assert.throws(() => applyChanges({}, ['RUN echo']), /run is not a valid change command/);
  assert.throws(() => applyChanges({}, ['BOGUS x']), /unknown instruction: BOGUS/);
});
