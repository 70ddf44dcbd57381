import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { FileContentStore } from './file-store.js';

const root = mkdtempSync(path.join(tmpdir(), 'berth-content-'));
after(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Buffer, alg = 'sha256') => `${alg}:${createHash(alg).update(b).digest('hex')}`;

test('write verifies and stores by digest', async () => {
  const store = await FileContentStore.open(root);
  const data = Buffer.from('hello');
  const info = await store.write(data);
  assert.equal(info.digest, sha(data));
  assert.deepEqual(await store.read(info.digest), data);
  await assert.rejects(store.write(Buffer.from('x'), { digest: sha(data) }), /digest mismatch/);
});

test('ingest streams, supports sha512, and rejects a wrong size without leaving files', async () => {
  const store = await FileContentStore.open(root);
  const data = Buffer.alloc(100_000, 7);
  const info = await store.ingest(Readable.from([data.subarray(0, 500), data.subarray(500)]), { algorithm: 'sha512' });
  assert.equal(info.digest, sha(data, 'sha512'));
  await assert.rejects(store.ingest(Readable.from([Buffer.from('abc')]), { size: 4 }), /size mismatch/);
  const all: string[] = [];
  for await (const b of store.list()) all.push(b.digest);
  assert.ok(all.includes(info.digest));
  assert.equal(all.length, 2);
});

test('invalid digests are refused', async () => {
  const store = await FileContentStore.open(root);
  assert.throws(() => store.pathOf('sha256:../../etc/passwd'), /invalid digest/);
});
