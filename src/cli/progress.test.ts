import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProgressRenderer, StreamError } from './progress.js';

function sink(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let buf = '';
  const write = (s: string) => {
    buf += s;
    return true;
  };
  const out = { isTTY, columns: 200, write } as unknown as NodeJS.WriteStream;
  return { out, text: () => buf };
}

const stream = [
  { status: 'Pulling from library/busybox', id: 'latest' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'aaa' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'bbb' },
  { status: 'Downloading', progressDetail: { current: 50, total: 100 }, progress: '[==>  ]', id: 'aaa' },
  { status: 'Download complete', progressDetail: {}, id: 'aaa' },
  { status: 'Pull complete', progressDetail: {}, id: 'bbb' },
  { status: 'Digest: sha256:abc' },
  { status: 'Status: Downloaded newer image for busybox:latest' },
];

test('non-terminal: one plain line per message, progress bars left out', () => {
  const s = sink(false);
  const r = new ProgressRenderer(s.out);
  for (const m of stream) r.write(m);
  assert.equal(
    s.text(),
    'latest: Pulling from library/busybox\naaa: Pulling fs layer\nbbb: Pulling fs layer\naaa: Download complete\nbbb: Pull complete\nDigest: sha256:abc\nStatus: Downloaded newer image for busybox:latest\n',
  );
});

test('terminal: per-layer lines updated in place with cursor movement', () => {
  const s = sink(true);
  const r = new ProgressRenderer(s.out);
  for (const m of stream.slice(0, 4)) r.write(m);
  const t = s.text();
  // a new line per new layer ID, then cursor up 2 to rewrite aaa's line with its bar, then back down
  assert.equal(
    t,
    'latest: Pulling from library/busybox\n' +
      '\n\x1b[1A\x1b[2K\raaa: Pulling fs layer \r\x1b[1B' +
      '\n\x1b[1A\x1b[2K\rbbb: Pulling fs layer \r\x1b[1B' +
      `\x1b[2A\x1b[2K\raaa: Downloading [${'='.repeat(25)}>${' '.repeat(25)}]      50B/100B\r\x1b[2B`,
  );
});

test('an in-stream error is raised with its code', () => {
  const r = new ProgressRenderer(sink(false).out);
  assert.throws(
    () => r.write({ errorDetail: { code: 23, message: 'boom' }, error: 'boom' }),
    (e: unknown) => e instanceof StreamError && e.message === 'boom' && e.code === 23,
  );
});
