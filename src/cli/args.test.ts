import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command, CommanderError } from './args.js';

function program(calls: unknown[][]): Command {
  const p = new Command('berth').option('-H, --host <h>', 'host', (v: string, prev: string[] = []) =>
    prev.concat([v]),
  );
  p.command('ps')
    .aliases(['list'])
    .option('-a, --all', 'all')
    .option('-n, --last <n>', 'last')
    .option('--no-trunc', 'no trunc')
    .action((opts: Record<string, unknown>) => calls.push(['ps', { ...opts }]));
  p.command('rm')
    .option('-f, --force', 'force')
    .argument('<container...>')
    .action((c: string[], opts: Record<string, unknown>) => calls.push(['rm', c, { ...opts }]));
  p.command('exec')
    .passThroughOptions()
    .option('-i, --interactive', 'i')
    .option('-t, --tty', 't')
    .argument('<container>')
    .argument('<command...>')
    .action((c: string, cmd: string[], opts: Record<string, unknown>) =>
      calls.push(['exec', c, cmd, { ...opts }]),
    );
  return p;
}

async function fails(argv: string[]): Promise<CommanderError> {
  try {
    await program([]).parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e;
    throw e;
  }
  throw new Error('expected a parse error');
}

test('options anywhere, --x=v, negation, aliases, global options before the command', async () => {
  const calls: unknown[][] = [];
  const p = program(calls);
  await p.parseAsync(['-H', 'unix:///x', 'list', '-a', '--last=3', '--no-trunc']);
  assert.deepEqual(calls[0], ['ps', { all: true, last: '3', trunc: false }]);
  assert.deepEqual(p.opts().host, ['unix:///x']);
  await program(calls).parseAsync(['rm', 'a', '-f', 'b']);
  assert.deepEqual(calls[1], ['rm', ['a', 'b'], { force: true }]);
});

test('pass-through: combined short flags, then everything after the first positional belongs to the command', async () => {
  const calls: unknown[][] = [];
  await program(calls).parseAsync(['exec', '-it', 'web', 'sh', '-c', 'ls -a', '--all']);
  assert.deepEqual(calls[0], [
    'exec',
    'web',
    ['sh', '-c', 'ls -a', '--all'],
    { interactive: true, tty: true },
  ]);
});

test('errors carry the failing command and commander wording', async () => {
  let e = await fails(['ps', '--bogus']);
  assert.equal(e.code, 'commander.unknownOption');
  assert.equal(e.command?.name(), 'ps');
  e = await fails(['ps', '-ax']);
  assert.match(e.message, /unknown option '-x'/);
  e = await fails(['ps', '-n']);
  assert.equal(e.code, 'commander.optionMissingArgument');
  e = await fails(['rm']);
  assert.equal(e.code, 'commander.missingArgument');
  e = await fails(['ps', 'extra']);
  assert.equal(e.code, 'commander.excessArguments');
  e = await fails(['nosuch']);
  assert.equal(e.code, 'commander.unknownCommand');
});
