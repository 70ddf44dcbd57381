import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseReference } from '../util/reference.js';
import { remoteOf } from './client.js';
import { humanSize, progressBar } from './progress.js';
import { RegistrySettings, validateInsecureRegistry, validateMirror } from './registries.js';

test('mirrors: http(s) URLs with nothing after the host, shown with a trailing slash', () => {
  assert.equal(validateMirror('http://127.0.0.1:5000'), 'http://127.0.0.1:5000/');
  assert.equal(validateMirror('https://mirror.example/'), 'https://mirror.example/');
  assert.throws(() => validateMirror('ftp://x'), /unsupported scheme "ftp"/);
  assert.throws(() => validateMirror('http://x/v2/'), /path, query, or fragment/);
  assert.throws(() => validateMirror('127.0.0.1:5000'), /not a valid URI|unsupported scheme/);
});

test('insecure registries: host[:port] or CIDR, a scheme dropped', () => {
  assert.equal(validateInsecureRegistry('http://reg.test:5000'), 'reg.test:5000');
  assert.equal(validateInsecureRegistry('10.0.0.0/8'), '10.0.0.0/8');
  assert.throws(() => validateInsecureRegistry('10.0.0.0/40'), /not a valid CIDR/);
  const s = new RegistrySettings({ mirrors: [], insecure: ['reg.test:5000', '10.210.0.0/16', 'plain.test'] });
  assert.equal(s.baseOf('127.0.0.1:5000').protocol, 'http:');
  assert.equal(s.baseOf('[::1]:5000').protocol, 'http:');
  assert.equal(s.baseOf('localhost:5000').protocol, 'http:');
  assert.equal(s.baseOf('reg.test:5000').protocol, 'http:');
  assert.equal(s.baseOf('reg.test:6000').protocol, 'https:');
  assert.equal(s.baseOf('plain.test:7000').protocol, 'http:');
  assert.equal(s.baseOf('10.210.3.4:5000').protocol, 'http:');
  assert.equal(s.baseOf('10.211.3.4:5000').protocol, 'https:');
  assert.equal(s.baseOf('registry.example').protocol, 'https:');
});

test('Docker Hub names go to the mirrors in order; other registries to themselves; pushes never to a mirror', () => {
  const s = new RegistrySettings({ mirrors: ['http://127.0.0.1:1', 'http://127.0.0.1:2/'], insecure: [] });
  for (const name of ['nginx', 'library/nginx', 'docker.io/library/nginx', 'index.docker.io/library/nginx']) {
    const r = remoteOf(parseReference(name));
    assert.deepEqual([r.host, r.repo, r.reference], ['docker.io', 'library/nginx', 'latest'], name);
    assert.deepEqual(
      s.pullEndpoints(r.host, name).map((e) => e.base.href),
      ['http://127.0.0.1:1/', 'http://127.0.0.1:2/'],
    );
  }
  assert.equal(remoteOf(parseReference('docker.io/bob/app:1')).repo, 'bob/app');
  assert.deepEqual(
    s.pullEndpoints('127.0.0.1:5000', 'x').map((e) => [e.base.href, e.mirror]),
    [['http://127.0.0.1:5000/', false]],
  );
  assert.throws(() => s.pushEndpoint('docker.io', 'nginx'), /pushes never go to a registry mirror/);
  assert.throws(
    () => new RegistrySettings({ mirrors: [], insecure: [] }).pullEndpoints('docker.io', 'nginx'),
    /Docker Hub cannot be reached.*registry-mirrors/,
  );
  const info = s.info();
  assert.deepEqual(info.Mirrors, ['http://127.0.0.1:1/', 'http://127.0.0.1:2/']);
  assert.deepEqual(info.IndexConfigs['docker.io'].Mirrors, info.Mirrors);
});

test("progress: Docker's sizes and a 50-column bar", () => {
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1_234_567), '1.235MB');
  assert.equal(humanSize(4_000_000), '4MB');
  const half = progressBar(2_000_000, 4_000_000);
  assert.match(half, /^\[={24}> {25}\] 2MB\/4MB$/);
  assert.match(progressBar(4_000_000, 4_000_000), /^\[={50}\] 4MB\/4MB$/);
});
