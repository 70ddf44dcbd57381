import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BuildArgs } from './args.js';

test('build args: --build-arg over defaults over meta ARGs; ENV wins; proxies without ARG; unused ones', () => {
  const a = new BuildArgs({ A: 'given', HTTP_PROXY: 'http://proxy', NEVER: 'x' });
  a.declareMeta('A=meta-a M=meta-m', '\\');
  assert.equal(a.meta.get('A'), 'given');
  assert.equal(a.meta.get('M'), 'meta-m');
  const declared = new Map<string, string | undefined>();
  a.declare('M D=default E', a.vars([], declared), '\\', declared);
  assert.deepEqual(
    [...declared],
    [
      ['M', 'meta-m'],
      ['D', 'default'],
      ['E', undefined],
    ],
  );
  assert.deepEqual(a.visible(['D=from-env'], declared), [
    ['M', 'meta-m'],
    ['HTTP_PROXY', 'http://proxy'],
  ]);
  assert.equal(a.vars(['D=from-env'], declared).get('D'), 'from-env');
  assert.deepEqual(a.unused(), ['NEVER']);
});
