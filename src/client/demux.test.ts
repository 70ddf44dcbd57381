import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Demuxer, demuxAll } from './demux.js';

function frame(t: number, s: string): Buffer {
  const p = Buffer.from(s);
  const h = Buffer.alloc(8);
  h[0] = t;
  h.writeUInt32BE(p.length, 4);
  return Buffer.concat([h, p]);
}

test('splits stdout and stderr frames', () => {
  const r = demuxAll(Buffer.concat([frame(1, 'out1 '), frame(2, 'err'), frame(1, 'out2')]));
  assert.equal(r.stdout.toString(), 'out1 out2');
  assert.equal(r.stderr.toString(), 'err');
});

test('frames split across chunks at any byte are reassembled', () => {
  const all = Buffer.concat([frame(1, 'hello'), frame(2, 'world'), frame(1, 'x'.repeat(70000))]);
  for (const step of [1, 3, 7, 8, 9, 4096]) {
    const got: string[] = [];
    const d = new Demuxer((t, p) => got.push(`${t}:${p.length}`));
    for (let i = 0; i < all.length; i += step) d.push(all.subarray(i, i + step));
    assert.deepEqual(got, ['1:5', '2:5', '1:70000'], `step ${step}`);
    assert.equal(d.leftover, 0);
  }
});

test('a truncated frame is held back, not emitted', () => {
  const d = new Demuxer(() => assert.fail('no frame expected'));
  d.push(frame(1, 'abcdef').subarray(0, 10));
  assert.equal(d.leftover, 10);
});
