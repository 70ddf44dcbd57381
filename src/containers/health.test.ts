import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goDuration, mergeHealthcheck, probeCommand, validateHealthcheck } from './health.js';

test('mergeHealthcheck: empty or zero fields take the image value', () => {
  const image = { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 };
  assert.deepEqual(mergeHealthcheck({ Retries: 7 }, image), { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 7, Timeout: undefined, StartPeriod: undefined, StartInterval: undefined });
  assert.deepEqual(mergeHealthcheck(undefined, image), image);
  assert.deepEqual(mergeHealthcheck({ Test: ['NONE'] }, image)?.Test, ['NONE']);
  assert.equal(mergeHealthcheck(undefined, undefined), undefined);
});

test('probeCommand: CMD, CMD-SHELL through the shell, NONE', () => {
  assert.deepEqual(probeCommand({ Test: ['CMD', 'cat', '/x'] }), ['cat', '/x']);
  assert.deepEqual(probeCommand({ Test: ['CMD-SHELL', 'exit 1'] }), ['/bin/sh', '-c', 'exit 1']);
  assert.deepEqual(probeCommand({ Test: ['CMD-SHELL', 'x'] }, ['/bin/bash', '-ec']), ['/bin/bash', '-ec', 'x']);
  assert.equal(probeCommand({ Test: ['NONE'] }), undefined);
  assert.equal(probeCommand({ Test: [] }), undefined);
  assert.equal(probeCommand(undefined), undefined);
});

test('validateHealthcheck: Docker refusals; null counts as unset', () => {
  assert.throws(() => validateHealthcheck({ Interval: 1000 }), /Interval in Healthcheck cannot be less than 1ms/);
  assert.throws(() => validateHealthcheck({ Retries: -1 }), /Retries in Healthcheck cannot be negative/);
  validateHealthcheck({ Interval: 0, Timeout: null as unknown as number, StartPeriod: 1e6 });
});

test('goDuration prints as Go does', () => {
  assert.equal(goDuration(100), '100ms');
  assert.equal(goDuration(30_000), '30s');
  assert.equal(goDuration(90_000), '1m30s');
  assert.equal(goDuration(1500), '1.5s');
  assert.equal(goDuration(3_600_000), '1h0m0s');
});
