import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from '../util/exec.js';
import { renderRuleset } from './firewall.js';

const nets = [
  { ifname: 'bt0test', subnet: '10.250.1.0/24', gateway: '10.250.1.1', internal: false, masquerade: true },
  { ifname: 'bb0testa', subnet: '10.250.2.0/24', gateway: '10.250.2.1', internal: true, masquerade: true },
];
const ports = [
  {
    proto: 'tcp' as const,
    hostIp: '127.0.0.1',
    hostPort: 18080,
    containerPort: 80,
    containerIp: '10.250.1.2',
    ifname: 'bt0test',
  },
  {
    proto: 'udp' as const,
    hostIp: '0.0.0.0',
    hostPort: 15353,
    containerPort: 53,
    containerIp: '10.250.1.3',
    ifname: 'bt0test',
  },
];

test('ruleset: DNAT, masquerade, isolation and internal rules', () => {
  const text = renderRuleset('berth_unit', nets, ports);
  assert.match(text, /ip daddr 127\.0\.0\.1 tcp dport 18080 dnat to 10\.250\.1\.2:80/);
  assert.match(text, /\n {4}udp dport 15353 dnat to 10\.250\.1\.3:53/);
  assert.match(text, /ip saddr 10\.250\.1\.0\/24 oifname != "bt0test" masquerade/);
  assert.doesNotMatch(
    text,
    /ip saddr 10\.250\.2\.0\/24 oifname != "bb0testa" masquerade/,
    'no masquerade for internal',
  );
  assert.match(text, /iifname "bb0testa" oifname != "bb0testa" drop/);
  assert.match(text, /iifname "bt0test" oifname \{ "bb0testa" \} drop/);
  // Declared, deleted and defined in one transaction.
  assert.ok(text.startsWith('table ip berth_unit {}\ndelete table ip berth_unit\ntable ip berth_unit {'));
});

test('ruleset is accepted by nft (check mode, nothing is loaded)', {
  skip: process.getuid?.() !== 0,
}, async () => {
  const r = await run('nft', ['-c', '-f', '-'], {
    input: renderRuleset('berth_unit', nets, ports),
    allowFail: true,
  });
  assert.equal(r.code, 0, r.stderr);
});
