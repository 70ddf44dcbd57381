import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OrderedOutput } from './output.js';

test('lanes come out in stage order whatever order they are written in', () => {
  const seen: string[] = [];
  const o = new OrderedOutput(
    { stream: (t) => seen.push(t), aux: (v) => seen.push(`aux:${v.ID}`), send: () => {} },
    3,
  );
  const [a, b, c] = [o.lane(0), o.lane(1), o.lane(2)];
  c.stream('c1');
  a.stream('a1');
  b.stream('b1');
  assert.deepEqual(seen, ['a1']);
  c.aux({ ID: 'c' });
  o.finish(2);
  assert.deepEqual(seen, ['a1']);
  a.stream('a2');
  o.finish(0);
  assert.deepEqual(seen, ['a1', 'a2', 'b1']);
  b.stream('b2');
  o.finish(1);
  assert.deepEqual(seen, ['a1', 'a2', 'b1', 'b2', 'c1', 'aux:c']);
});
