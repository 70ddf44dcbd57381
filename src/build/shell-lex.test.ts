// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile variables, not template literals
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyValues, processWord, splitWords, varsOf } from './shell-lex.js';

const vars = varsOf(['A=1', 'B=two words', 'EMPTY=']);

test('splitWords keeps quotes and escapes for processWord', () => {
  assert.deepEqual(splitWords('a "b c" \'d e\' f\\ g'), ['a', '"b c"', "'d e'", 'f\\ g']);
  assert.deepEqual(splitWords('x` y z', '`'), ['x` y', 'z']);
});

test('processWord: quotes, escapes, variables and their modifiers', () => {
  const p = (w: string) => processWord(w, vars);
  assert.equal(p('$A-${A}'), '1-1');
  assert.equal(p('"$B"'), 'two words');
  assert.equal(p("'$B'"), '$B');
  assert.equal(p('\\$A'), '$A');
  assert.equal(p('"a\\"b"'), 'a"b');
  assert.equal(p('${NOPE:-def}|${EMPTY:-def}|${EMPTY-def}'), 'def|def|');
  assert.equal(p('${A:+alt}|${NOPE:+alt}|${EMPTY+alt}'), 'alt||alt');
  assert.equal(p('${NOPE:-${A}x}'), '1x');
  assert.equal(p('$ and $1'), '$ and $1');
  assert.throws(() => p('${NOPE:?must be set}'), /NOPE: must be set/);
  assert.throws(() => p('"open'), /double-quote/);
});

test('keyValues: ENV/LABEL pairs and the legacy form', () => {
  assert.deepEqual(keyValues('X=$A Y="a b" Z=', vars, '\\', { legacy: true, instruction: 'ENV' }), [
    { key: 'X', value: '1' },
    { key: 'Y', value: 'a b' },
    { key: 'Z', value: '' },
  ]);
  assert.deepEqual(keyValues('KEY some value $A', vars, '\\', { legacy: true, instruction: 'ENV' }), [
    { key: 'KEY', value: 'some value 1' },
  ]);
  assert.deepEqual(keyValues('N V=1', vars, '\\', { legacy: false, keyOnly: true, instruction: 'ARG' }), [
    { key: 'N', value: undefined },
    { key: 'V', value: '1' },
  ]);
});
