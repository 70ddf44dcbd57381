import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRef, familiarName } from './reference.js';
import { progressString } from './progress.js';
import {
  bytesSize,
  ellipsis,
  humanDuration,
  humanSize,
  parseGoDuration,
  ramInBytes,
  truncateId,
} from './units.js';

test('sizes as go-units prints them', () => {
  assert.equal(humanSize(0, 3), '0B');
  assert.equal(humanSize(4266000, 3), '4.27MB');
  assert.equal(humanSize(1000, 3), '1kB');
  assert.equal(humanSize(999, 3), '999B');
  assert.equal(humanSize(1234567), '1.235MB');
  assert.equal(bytesSize(25275424768), '23.54GiB');
});

test('durations as go-units prints them', () => {
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1000), '1 second');
  assert.equal(humanDuration(59_000), '59 seconds');
  assert.equal(humanDuration(61_000), 'About a minute');
  assert.equal(humanDuration(5 * 60_000), '5 minutes');
  assert.equal(humanDuration(3600_000), 'About an hour');
  assert.equal(humanDuration(5 * 3600_000), '5 hours');
  assert.equal(humanDuration(3 * 86400_000), '3 days');
  assert.equal(parseGoDuration('1m30s'), 90_000);
  assert.equal(parseGoDuration('abc'), undefined);
  assert.equal(ramInBytes('64m'), 67108864);
});

test('ids, ellipsis, references', () => {
  assert.equal(truncateId('sha256:0123456789abcdef'), '0123456789ab');
  assert.equal(ellipsis('sh -c while true; do sleep 1; done', 20), 'sh -c while true; d…');
  assert.deepEqual(parseRef('busybox'), {
    domain: 'docker.io',
    path: 'library/busybox',
    tag: undefined,
    digest: undefined,
  });
  const r = parseRef('127.0.0.1:5000/team/app:v1');
  assert.equal(r.domain, '127.0.0.1:5000');
  assert.equal(r.tag, 'v1');
  assert.equal(familiarName(parseRef('docker.io/library/busybox:1')), 'busybox');
  assert.throws(() => parseRef('UPPER'), /invalid reference format/);
});

test('progress bar as jsonmessage renders it', () => {
  assert.equal(
    progressString({ current: 50, total: 100 }, 200),
    `[${'='.repeat(25)}>${' '.repeat(25)}]      50B/100B`,
  );
  assert.equal(progressString({ current: 50, total: 100 }, 80), '     50B/100B');
  assert.equal(progressString({}, 200), '');
});
