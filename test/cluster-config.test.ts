/** The cluster settings as berthd parses them, from flags and daemon.json (no etcd needed). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { defaultConfig } from '../src/daemon/config.js';
import { applyDaemonJson } from '../src/daemon/daemon-json.js';
import { clusterSettings, parseStoreOpts, parseStoreUrl, resolveAdvertise } from '../src/cluster/config.js';

const ifaces = {
  lo: [{ family: 'IPv4', address: '127.0.0.1', internal: true }],
  ul0: [
    { family: 'IPv6', address: 'fe80::1', internal: false },
    { family: 'IPv4', address: '10.231.7.11', internal: false },
  ],
};

test('etcd:// URLs with one or more members', () => {
  assert.deepEqual(parseStoreUrl('etcd://10.0.0.1:2379', false), ['http://10.0.0.1:2379']);
  assert.deepEqual(parseStoreUrl('etcd://a:2379,b:2381,c', false), [
    'http://a:2379',
    'http://b:2381',
    'http://c:2379',
  ]);
  assert.deepEqual(parseStoreUrl('etcd://a:2379', true), ['https://a:2379']);
  assert.throws(() => parseStoreUrl('consul://a:8500', false), /only etcd:\/\//);
  assert.throws(() => parseStoreUrl('etcd://', false), /names no host|unsupported/);
});

test('advertise: an address or an interface, with an optional port', () => {
  assert.equal(resolveAdvertise('10.1.2.3', ifaces), '10.1.2.3');
  assert.equal(resolveAdvertise('10.1.2.3:2376', ifaces), '10.1.2.3');
  assert.equal(resolveAdvertise('ul0', ifaces), '10.231.7.11');
  assert.equal(resolveAdvertise('ul0:2376', ifaces), '10.231.7.11');
  assert.throws(() => resolveAdvertise('eth9', ifaces), /no interface named eth9/);
  assert.throws(() => resolveAdvertise('10.1.2.300', ifaces), /invalid cluster advertise/);
});

test('store options: TTL and TLS files', () => {
  assert.deepEqual(parseStoreOpts({}), { ttl: 10 });
  assert.equal(parseStoreOpts({ 'discovery.ttl': '3' }).ttl, 3);
  assert.equal(parseStoreOpts({ 'discovery.ttl': '20s' }).ttl, 20);
  assert.throws(() => parseStoreOpts({ 'discovery.ttl': '1' }), /invalid discovery.ttl/);
  assert.deepEqual(parseStoreOpts({ 'kv.cacertfile': '/ca', 'kv.certfile': '/c', 'kv.keyfile': '/k' }).tls, {
    ca: '/ca',
    cert: '/c',
    key: '/k',
  });
  assert.throws(() => parseStoreOpts({ 'kv.certfile': '/c' }), /needs kv.cacertfile/);
  assert.throws(() => parseStoreOpts({ 'kv.path': '/x' }), /unknown cluster store option/);
});

test('a store without an advertise address is refused', () => {
  assert.throws(() => clusterSettings('etcd://a:2379', undefined, {}, ifaces), /needs --cluster-advertise/);
  const s = clusterSettings('etcd://a:2379,b:2379', 'ul0', { 'discovery.ttl': '5' }, ifaces);
  assert.deepEqual(s.endpoints, ['http://a:2379', 'http://b:2379']);
  assert.equal(s.advertiseAddr, '10.231.7.11');
  assert.equal(s.ttl, 5);
});

test('daemon.json keys: cluster-store, cluster-advertise, cluster-store-opts', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-cluster-json-'));
  try {
    const file = path.join(dir, 'daemon.json');
    writeFileSync(
      file,
      JSON.stringify({
        'cluster-store': 'etcd://10.1.0.5:2379',
        'cluster-advertise': 'eth0:2376',
        'cluster-store-opts': { 'discovery.ttl': 5, 'kv.cacertfile': '/ca.pem' },
      }),
    );
    const c = defaultConfig();
    assert.equal(c.clusterStore, '');
    await applyDaemonJson(c, file, true);
    assert.equal(c.clusterStore, 'etcd://10.1.0.5:2379');
    assert.equal(c.clusterAdvertise, 'eth0:2376');
    assert.deepEqual(c.clusterStoreOpts, { 'discovery.ttl': '5', 'kv.cacertfile': '/ca.pem' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
