import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResidentProcess, type TakeMarker } from './resident-process.js';

// A stand-in tool: echoes its input to stderr line by line, and exits a little after stdin ends.
const TOOL = ['-c', 'while IFS= read -r l; do echo "$l" >&2; done; sleep 0.3'];
const take: TakeMarker<string> = (err, marker) => {
  const i = err.indexOf(`${marker}\n`);
  return i < 0 ? undefined : { result: err.slice(0, i).trim(), rest: err.slice(i + marker.length + 1) };
};

test('requests get their own output, in order', async () => {
  const p = new ResidentProcess('sh', TOOL, take);
  const [a, b] = await Promise.all([p.run('one\nm1\n', 'm1'), p.run('two\nm2\n', 'm2')]);
  assert.equal(a, 'one');
  assert.equal(b, 'two');
  p.end();
});

test('a closed process that exits late leaves its successor alone', async () => {
  const old = new ResidentProcess('sh', TOOL, take);
  assert.equal(await old.run('x\nm0\n', 'm0'), 'x');
  old.end(); // exits ≈ 0.3 s from now, while the next process is answering
  const next = new ResidentProcess('sh', ['-c', 'sleep 0.6; while IFS= read -r l; do echo "$l" >&2; done'], take);
  assert.equal(await next.run('y\nm1\n', 'm1'), 'y');
  assert.equal(old.alive, false);
  next.end();
});

test('waiters of a process that dies are rejected', async () => {
  const p = new ResidentProcess('sh', ['-c', 'exit 3'], take);
  await assert.rejects(p.run('z\nm\n', 'm'), /sh process exited/);
});
