import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BuildCacheRecord } from './index.js';
import { selectForPrune } from './prune.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const hoursAgo = (h: number) => new Date(NOW - h * 3600_000).toISOString();

function rec(ID: string, o: Partial<BuildCacheRecord> = {}): BuildCacheRecord {
  return {
    ID,
    Parents: null,
    Type: 'regular',
    Description: `step ${ID}`,
    InUse: false,
    Shared: false,
    Size: 100,
    CreatedAt: hoursAgo(48),
    LastUsedAt: hoursAgo(48),
    UsageCount: 1,
    ...o,
  };
}

const records = [
  rec('a-old', { LastUsedAt: hoursAgo(30) }),
  rec('b-recent', { LastUsedAt: hoursAgo(1) }),
  rec('c-shared', { Shared: true, LastUsedAt: hoursAgo(50) }),
  rec('d-mount', { Type: 'exec.cachemount', Size: 1000, LastUsedAt: hoursAgo(10) }),
  rec('e-inuse', { InUse: true }),
];
const ids = (rs: BuildCacheRecord[]) => rs.map((r) => r.ID);

test('without all: shared and in-use records stay; with all only in-use ones', () => {
  assert.deepEqual(ids(selectForPrune(records, { all: false }, NOW)), ['a-old', 'b-recent', 'd-mount']);
  assert.deepEqual(ids(selectForPrune(records, { all: true }, NOW)), ['a-old', 'b-recent', 'c-shared', 'd-mount']);
});

test('until: records used within the duration stay', () => {
  assert.deepEqual(ids(selectForPrune(records, { all: true, keepDurationMs: 24 * 3600_000 }, NOW)), [
    'a-old',
    'c-shared',
  ]);
});

test('filters: id as a regular expression, type and description whole, booleans', () => {
  const f = (k: string, v: string[]) => ({ all: true, filters: new Map([[k, v]]) });
  assert.deepEqual(ids(selectForPrune(records, f('id', ['^[ab]-']), NOW)), ['a-old', 'b-recent']);
  assert.deepEqual(ids(selectForPrune(records, f('type', ['exec.cachemount']), NOW)), ['d-mount']);
  assert.deepEqual(ids(selectForPrune(records, f('type', ['exec']), NOW)), []);
  assert.deepEqual(ids(selectForPrune(records, f('description', ['step a-old']), NOW)), ['a-old']);
  assert.deepEqual(ids(selectForPrune(records, f('shared', ['true']), NOW)), ['c-shared']);
  assert.deepEqual(ids(selectForPrune(records, f('shared', []), NOW)), ['c-shared']);
  assert.deepEqual(ids(selectForPrune(records, f('private', ['true']), NOW)), ['a-old', 'b-recent', 'd-mount']);
  assert.deepEqual(ids(selectForPrune(records, f('parent', ['a-old']), NOW)), []);
  assert.throws(() => selectForPrune(records, f('id', ['(']), NOW), /invalid filter value for id/);
});

test('keep-storage: least recently used first, until the cache fits', () => {
  // 1400 bytes in all; down to 1300 takes the oldest candidate, down to 300 also the next two.
  assert.deepEqual(ids(selectForPrune(records, { all: false, keepBytes: 1300 }, NOW)), ['a-old']);
  assert.deepEqual(ids(selectForPrune(records, { all: false, keepBytes: 300 }, NOW)), ['a-old', 'd-mount']);
  assert.deepEqual(ids(selectForPrune(records, { all: true, keepBytes: 300 }, NOW)), ['c-shared', 'a-old', 'd-mount']);
  assert.deepEqual(ids(selectForPrune(records, { all: true, keepBytes: 5000 }, NOW)), []);
});
