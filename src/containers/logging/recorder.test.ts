/**
 * The json-file recorder on conmon output made by hand: Docker's 16 KiB pieces from conmon's
 * partial entries, a partial line kept across a restart, crash recovery without loss or repeats,
 * rotation, and reading back (tail, since/until, damaged lines).
 */
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { type FollowSource, readJsonLog, type ReadOptions } from './json-reader.js';
import { LogOutput } from './output.js';
import { JsonFileRecorder, LINE_LIMIT } from './recorder.js';
import type { Rotation } from './options.js';

let dir: string;
let paths: { monitor: string; json: string; position: string };
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'berth-recorder-'));
  paths = { monitor: path.join(dir, 'monitor.log'), json: path.join(dir, 'x-json.log'), position: path.join(dir, 'log-position.json') };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const NO_ROTATION: Rotation = { maxFiles: 1, compress: false };
const conmon = (lines: [string, 'stdout' | 'stderr', 'F' | 'P', string][]) =>
  lines.map(([t, s, tag, text]) => `2026-12-06T10:00:${t}+00:00 ${s} ${tag} ${text}\n`).join('');

async function record(rotation = NO_ROTATION, finish = false): Promise<JsonFileRecorder> {
  const r = new JsonFileRecorder(paths, rotation, () => {});
  r.open();
  await r.sync();
  if (finish) await r.exited();
  return r;
}
const entries = () =>
  readFileSync(paths.json, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { log: string; stream: string; time: string });

async function read(o: Partial<ReadOptions> = {}, timestamps = false): Promise<string> {
  const parts: Buffer[] = [];
  const out = new LogOutput(
    {
      write: (b, done) => {
        parts.push(Buffer.from(b));
        done();
        return true;
      },
      drain: async () => {},
    },
    true,
    timestamps,
  );
  await readJsonLog(paths.json, { stdout: true, stderr: true, ...o }, out, new AbortController().signal);
  return Buffer.concat(parts).toString('utf8');
}

describe('json-file recorder', () => {
  test('joins conmon’s partial entries and cuts them as dockerd: 16 KiB pieces sharing the first time', async () => {
    const a = 'a'.repeat(8192);
    writeFileSync(
      paths.monitor,
      conmon([
        ['01.5', 'stdout', 'P', a],
        ['01.6', 'stderr', 'F', 'err line'],
        ['01.7', 'stdout', 'P', a],
        ['01.8', 'stdout', 'P', a],
        ['01.9', 'stdout', 'F', 'tail'],
        ['02', 'stdout', 'F', ''],
      ]),
    );
    const r = await record();
    r.close();
    const e = entries();
    assert.deepEqual(
      e.map((x) => [x.stream, x.log.length, x.time]),
      [
        ['stderr', 9, '2026-12-06T10:00:01.6Z'],
        ['stdout', LINE_LIMIT, '2026-12-06T10:00:01.5Z'],
        ['stdout', 8192 + 4 + 1, '2026-12-06T10:00:01.5Z'],
        ['stdout', 1, '2026-12-06T10:00:02Z'],
      ],
    );
    assert.equal(await read(), `err line\n${a.repeat(3)}tail\n\n`);
  });

  test('a partial line survives a restart of the recorder and ends whole', async () => {
    writeFileSync(paths.monitor, conmon([['01', 'stdout', 'P', 'hel']]));
    (await record()).close();
    assert.equal(readFileSync(paths.json, 'utf8'), '');
    appendFileSync(paths.monitor, conmon([['02', 'stdout', 'F', 'lo']]));
    (await record()).close();
    assert.deepEqual(entries(), [{ log: 'hello\n', stream: 'stdout', time: '2026-12-06T10:00:01Z' }]);
  });

  test('at exit a last line without newline is written as it is, and conmon’s file starts afresh', async () => {
    writeFileSync(paths.monitor, conmon([['01', 'stdout', 'F', 'one'], ['02', 'stdout', 'P', 'no newline']]));
    const r = await record(NO_ROTATION, true);
    r.close();
    assert.deepEqual(readdirSync(dir).sort(), ['log-position.json', 'x-json.log']);
    assert.equal(await read(), 'one\nno newline');
  });

  test('after a crash, what was converted since the last saved position is converted again, once', async () => {
    writeFileSync(paths.monitor, conmon([['01', 'stdout', 'F', 'one']]));
    (await record()).close();
    const saved = path.join(dir, 'saved-position');
    copyFileSync(paths.position, saved);
    appendFileSync(paths.monitor, conmon([['02', 'stdout', 'F', 'two'], ['03', 'stderr', 'F', 'three']]));
    (await record()).close();
    // As if berthd died before saving: the old position, a json file that is longer than it says.
    copyFileSync(saved, paths.position);
    appendFileSync(paths.monitor, conmon([['04', 'stdout', 'F', 'four']]));
    (await record()).close();
    assert.deepEqual(
      entries().map((e) => e.log),
      ['one\n', 'two\n', 'three\n', 'four\n'],
    );
  });

  test('rotates before the write that follows reaching max-size, keeping max-file files', async () => {
    const lines: [string, 'stdout', 'F', string][] = [];
    for (let i = 0; i < 40; i++) lines.push([String(10 + i), 'stdout', 'F', `line-${i}`]);
    writeFileSync(paths.monitor, conmon(lines));
    (await record({ maxSize: 300, maxFiles: 3, compress: false })).close();
    const names = readdirSync(dir).filter((n) => n.startsWith('x-json.log')).sort();
    assert.deepEqual(names, ['x-json.log', 'x-json.log.1', 'x-json.log.2']);
    for (const n of names.slice(1)) {
      const size = readFileSync(path.join(dir, n)).length;
      assert.ok(size >= 300 && size < 300 + 80, `${n} ${size}`);
    }
    const got = (await read()).split('\n').filter(Boolean);
    assert.equal(got.at(-1), 'line-39');
    const first = Number(got[0].slice(5));
    assert.deepEqual(got, Array.from({ length: 40 - first }, (_, k) => `line-${first + k}`));
    assert.equal(await read({ tail: 3 }), 'line-37\nline-38\nline-39\n');
    assert.equal(await read({ tail: got.length - 1 }), got.slice(1).map((l) => `${l}\n`).join(''));
    // since/until on the times (line i was written at 10:00:(10+i)).
    const at = (sec: number) => ({ s: Date.parse('2026-12-06T10:00:00Z') / 1000 + sec, ns: 0 });
    assert.equal(await read({ since: at(47), until: at(48) }), 'line-37\nline-38\n');
    assert.equal(await read({ since: at(49) }, true), '2026-12-06T10:00:49.000000000Z line-39\n');
  });

  test('damaged lines are skipped, the rest is read', async () => {
    writeFileSync(paths.monitor, conmon([['01', 'stdout', 'F', 'one']]));
    (await record()).close();
    const good = readFileSync(paths.json, 'utf8');
    appendFileSync(paths.json, 'garbage\n{"log":"cut\n\0\0\n{"stream":"stderr","log":"other order\\u003c\\n","time":"2026-12-06T10:00:02Z"}\n');
    appendFileSync(paths.json, good.replace('one', 'two'));
    appendFileSync(paths.json, '{"log":"torn');
    assert.equal(await read(), 'one\nother order<\ntwo\n');
  });

  for (const compress of [false, true]) {
    test(`a follower held back by its client while the log rotates many times misses nothing and repeats nothing${compress ? ' (compress)' : ''}`, async () => {
      const lines = (from: number, to: number) => {
        const l: [string, 'stdout', 'F', string][] = [];
        for (let i = from; i < to; i++) l.push([String(10 + (i % 40)), 'stdout', 'F', `line-${i}`]);
        return conmon(l);
      };
      let version = 0;
      const waiters: (() => void)[] = [];
      const r = new JsonFileRecorder(paths, { maxSize: 300, maxFiles: 60, compress }, () => {
        version++;
        for (const w of waiters.splice(0)) w();
      });
      r.open();
      writeFileSync(paths.monitor, lines(0, 5));
      await r.sync();
      let stop!: () => void;
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      const follow: FollowSource = {
        version: () => version,
        changed: (v) => (v !== version ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
        stopped,
        generation: () => r.rotations,
      };
      // The client takes the first batch, then stops reading until released.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let heldBack = false;
      let firstWrite!: () => void;
      const wroteOnce = new Promise<void>((resolve) => (firstWrite = resolve));
      const parts: Buffer[] = [];
      const out = new LogOutput(
        {
          write: (b, done) => {
            parts.push(Buffer.from(b));
            done();
            firstWrite();
            if (heldBack) return true;
            heldBack = true;
            return false;
          },
          drain: () => released,
        },
        true,
        false,
      );
      const reading = readJsonLog(paths.json, { stdout: true, stderr: true }, out, new AbortController().signal, follow);
      await wroteOnce;
      // Meanwhile the container writes on: a dozen rotations and more.
      appendFileSync(paths.monitor, lines(5, 200));
      await r.sync();
      assert.ok(r.rotations > 12, `${r.rotations} rotations`);
      release();
      await r.exited();
      stop();
      await reading;
      r.close();
      assert.equal(
        Buffer.concat(parts).toString(),
        Array.from({ length: 200 }, (_, i) => `line-${i}\n`).join(''),
      );
    });
  }
});
