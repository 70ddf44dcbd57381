// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile variables, not template literals
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { segmentPattern } from './copy.js';
import { flagValue, jsonForm, parseDockerfile, selectStages } from './dockerfile.js';

test('stages, meta ARGs, flags, continuations and heredocs', () => {
  const df = parseDockerfile(`# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM \${BASE} AS Build
RUN echo a \\
  # a comment inside
  && echo b
COPY --from=x --chown=1:2 src /dst/
RUN <<EOF
echo from heredoc
EOF
FROM scratch
CMD ["/bin/echo", "json form"]
`);
  assert.equal(df.syntax, 'docker/dockerfile:1');
  assert.equal(df.metaArgs.length, 1);
  assert.equal(df.stages.length, 2);
  assert.equal(df.stages[0].name, 'build');
  const [run, copy, heredoc] = df.stages[0].instructions;
  assert.equal(run.args, 'echo a   && echo b');
  assert.equal(run.line, 4);
  assert.equal(flagValue(copy, 'from'), 'x');
  assert.equal(copy.args, 'src /dst/');
  assert.deepEqual(heredoc.heredocs, [{ name: 'EOF', body: 'echo from heredoc\n' }]);
  assert.deepEqual(jsonForm(df.stages[1].instructions[0].args), ['/bin/echo', 'json form']);
});

test('errors worded as Docker words them', () => {
  assert.throws(
    () => parseDockerfile('FROM busybox\nRUN true\nFORM x\n'),
    /dockerfile parse error on line 3: unknown instruction: FORM/,
  );
  assert.throws(() => parseDockerfile('  \n'), /the Dockerfile \(Dockerfile\) cannot be empty/);
  assert.throws(() => parseDockerfile('RUN true\n'), /no build stage in current context/);
  assert.throws(() => parseDockerfile('FROM a AS x\nFROM b AS x\n'), /duplicate stage name "x"/);
});

test('COPY wildcards follow Go filepath.Match', () => {
  assert.ok(segmentPattern('*.txt').test('a.txt'));
  assert.ok(!segmentPattern('*.txt').test('a.txt.bak'));
  assert.ok(segmentPattern('a?[0-9]').test('ab7'));
  assert.ok(segmentPattern('[!a]x').test('bx'));
  assert.ok(!segmentPattern('[!a]x').test('ax'));
});

test('selectStages: the target and what it needs, by name, index, --from and mount from=', () => {
  const df = parseDockerfile(`ARG B=base
FROM busybox AS base
FROM busybox AS unused
FROM busybox AS tool
FROM \${B} AS mid
RUN --mount=type=bind,from=tool,target=/t true
FROM scratch AS final
COPY --from=1 /x /x
COPY --from=mid /y /y
`);
  const names = (t?: string) => selectStages(df, t, new Map([['B', 'base']])).map((s) => s.name);
  assert.deepEqual(names(), ['base', 'unused', 'tool', 'mid', 'final']);
  assert.deepEqual(names('mid'), ['base', 'tool', 'mid']);
  assert.throws(() => names('nope'), /target stage "nope" could not be found/);
  const df2 = parseDockerfile('FROM busybox AS a\nFROM busybox AS b\nFROM busybox\nCOPY --from=a /x /x\n');
  assert.deepEqual(
    selectStages(df2, undefined, new Map()).map((s) => s.index),
    [0, 2],
  );
});
