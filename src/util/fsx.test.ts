import assert from 'node:assert/strict';
import {
  mkdtempSync,
  promises as fs,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { discardDir, exists, replaceFile, sweepDiscarded, writeFileAtomic } from './fsx.js';

const root = mkdtempSync(path.join(tmpdir(), 'berth-fsx-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('replaceFile swaps the content by rename and leaves no temp file', async () => {
  const f = path.join(root, 'state.json');
  writeFileSync(f, 'old');
  await replaceFile(f, 'new', 0o600);
  assert.equal(readFileSync(f, 'utf8'), 'new');
  assert.equal(statSync(f).mode & 0o777, 0o600);
  assert.deepEqual(
    readdirSync(root).filter((n) => n.startsWith('.tmp-')),
    [],
  );
});

test('replaceFile into a missing directory fails and writes nothing', async () => {
  await assert.rejects(replaceFile(path.join(root, 'missing', 'x'), 'data'));
  assert.equal(await exists(path.join(root, 'missing')), false);
});

test('writeFileAtomic writes durably and completely', async () => {
  const f = path.join(root, 'record.json');
  await writeFileAtomic(f, JSON.stringify({ a: 1 }));
  assert.deepEqual(JSON.parse(readFileSync(f, 'utf8')), { a: 1 });
});

test('discardDir takes a directory away at once; sweepDiscarded removes interrupted ones', async () => {
  const parent = path.join(root, 'records');
  const dir = path.join(parent, 'c1');
  await fs.mkdir(path.join(dir, 'sub'), { recursive: true });
  writeFileSync(path.join(dir, 'sub', 'log'), 'x'.repeat(10_000));
  discardDir(dir);
  assert.equal(await exists(dir), false, 'gone for readers as soon as the call returns');
  discardDir(path.join(parent, 'never-there')); // a missing directory is not an error

  // A discard that a stop interrupted: the renamed directory is still there at the next start.
  const left = path.join(parent, '.discarded-c2-0000');
  await fs.mkdir(path.join(left, 'sub'), { recursive: true });
  const keep = path.join(parent, 'c3');
  await fs.mkdir(keep);
  await sweepDiscarded(parent);
  await new Promise((r) => setTimeout(r, 50)); // the background delete of c1
  assert.deepEqual(readdirSync(parent), ['c3']);
});
