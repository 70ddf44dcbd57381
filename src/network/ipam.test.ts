import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  allocateAddress,
  carveSubnet,
  checkFixedAddress,
  formatCidr,
  ipToNum,
  macFor,
  numToIp,
  overlaps,
  parseCidr,
  planSubnet,
} from './ipam.js';

test('CIDR parsing and formatting', () => {
  assert.equal(formatCidr(parseCidr('10.1.2.3/16')), '10.1.0.0/16');
  assert.throws(() => parseCidr('10.1.2.3/16', true), /should be 10.1.0.0\/16/);
  assert.throws(() => parseCidr('10.1.2/16'), /invalid/);
  assert.throws(() => parseCidr('300.1.2.3/8'), /invalid/);
  assert.equal(numToIp(ipToNum('255.254.1.0')), '255.254.1.0');
});

test('overlap detection', () => {
  assert.ok(overlaps(parseCidr('10.0.0.0/8'), parseCidr('10.5.0.0/16')));
  assert.ok(overlaps(parseCidr('10.5.0.0/16'), parseCidr('10.0.0.0/8')));
  assert.ok(!overlaps(parseCidr('10.5.0.0/16'), parseCidr('10.6.0.0/16')));
});

test('subnets are carved from pools around taken ones', () => {
  const pools = [{ base: '10.9.0.0/16', size: 24 }];
  const taken = [parseCidr('10.9.0.0/24'), parseCidr('10.9.1.0/25')];
  assert.equal(formatCidr(carveSubnet(pools, taken)!), '10.9.2.0/24');
  assert.equal(carveSubnet([{ base: '10.9.0.0/24', size: 24 }], taken), undefined);
});

test('addresses: gateway, range, leases, fixed', () => {
  const plan = planSubnet('10.2.0.0/29', undefined, undefined);
  assert.equal(numToIp(plan.gateway), '10.2.0.1');
  const leased = new Set<number>();
  const got: string[] = [];
  for (;;) {
    const ip = allocateAddress(plan, leased);
    if (ip === undefined) break;
    leased.add(ip);
    got.push(numToIp(ip));
  }
  assert.deepEqual(got, ['10.2.0.2', '10.2.0.3', '10.2.0.4', '10.2.0.5', '10.2.0.6']);
  const ranged = planSubnet('10.3.0.0/24', '10.3.0.254', '10.3.0.128/25');
  assert.equal(numToIp(allocateAddress(ranged, new Set())!), '10.3.0.128');
  assert.throws(() => planSubnet('10.3.0.0/24', '10.4.0.1'), /no matching subnet for gateway/);
  assert.throws(() => planSubnet('10.3.0.0/24', undefined, '10.4.0.0/25'), /no matching subnet for range/);
  assert.throws(() => checkFixedAddress(ranged, '10.9.9.9', new Set()), /does not belong/);
  assert.throws(() => checkFixedAddress(ranged, '10.3.0.254', new Set()), /already in use/);
  assert.equal(numToIp(checkFixedAddress(ranged, '10.3.0.7', new Set())), '10.3.0.7');
  assert.equal(macFor(ipToNum('172.17.0.2')), '02:42:ac:11:00:02');
});
