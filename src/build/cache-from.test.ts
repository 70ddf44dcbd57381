import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ImageConfig } from '../images/index.js';
import { isValidParent, layerOfEntry } from './cache-from.js';

const h = (created_by: string, empty = false) => ({
  created: '2026-01-01T00:00:00Z',
  created_by,
  ...(empty ? { empty_layer: true } : {}),
});

function config(history: ReturnType<typeof h>[], diffIds: string[]): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds }, history };
}

const base = config([h('ADD rootfs'), h('CMD ["sh"]', true)], ['sha256:a']);
const child = config([h('ADD rootfs'), h('CMD ["sh"]', true), h('ENV A=1', true), h('COPY f', false)], [
  'sha256:a',
  'sha256:b',
]);

test('isValidParent: the history and layers of the parent must begin the target', () => {
  assert.equal(isValidParent(child, base), true);
  assert.equal(isValidParent(child, undefined), true, 'scratch: any image with history');
  assert.equal(isValidParent(config([], []), undefined), false, 'no history: nothing to match');
  assert.equal(isValidParent(base, base), false, 'the parent must be shorter');
  assert.equal(isValidParent(child, config([h('ADD other'), h('CMD ["sh"]', true)], ['sha256:a'])), false);
  assert.equal(isValidParent(child, config([h('ADD rootfs'), h('CMD ["sh"]', true)], ['sha256:x'])), false);
  const otherTime = config([{ ...h('ADD rootfs'), created: '2025-01-01T00:00:00Z' }, h('CMD ["sh"]', true)], ['sha256:a']);
  assert.equal(isValidParent(child, otherTime), false, 'history entries compare with their times');
});

test('layerOfEntry: the layer a history entry added, none for an empty one', () => {
  assert.equal(layerOfEntry(child, 0), 'sha256:a');
  assert.equal(layerOfEntry(child, 2), undefined);
  assert.equal(layerOfEntry(child, 3), 'sha256:b');
});
