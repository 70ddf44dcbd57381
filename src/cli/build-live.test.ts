import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveBuildView } from './build-live.js';

/** A terminal as far as the view drives it: lines, cursor up, carriage return, erase below, SGR ignored. */
class Screen {
  lines: string[] = [''];
  row = 0;
  write(s: string): void {
    for (let i = 0; i < s.length; i++) {
      const esc = /^\x1b\[(\d*)([A-Za-z])/.exec(s.slice(i));
      if (esc) {
        i += esc[0].length - 1;
        if (esc[2] === 'A') this.row = Math.max(0, this.row - Number(esc[1] || 1));
        else if (esc[2] === 'J') this.lines = [...this.lines.slice(0, this.row), ''];
        else if (esc[2] !== 'm') throw new Error(`unexpected escape ${esc[0]}`);
      } else if (s[i] === '\n') {
        this.row++;
        if (this.lines.length <= this.row) this.lines.push('');
      } else if (s[i] === '\r') {
        // the view writes \r only right after moving up, at column 0 already
      } else this.lines[this.row] += s[i];
    }
  }
  text(): string {
    return this.lines.join('\n');
  }
}

const STEP = 'Step 2/3 : RUN for i in 1 2 3 4 5 6 7 8; do echo line $i; done\n ---> Running in 0123456789ab\n';

test('the last lines of a running step are redrawn in place, and go when it ends', () => {
  const screen = new Screen();
  const view = new LiveBuildView(screen, () => 40);
  view.write('Step 1/3 : FROM busybox\n ---> f382dd7fc0b3\n');
  view.write(STEP);
  for (let i = 1; i <= 8; i++) view.write(`line ${i}\n`);
  assert.equal(
    screen.text(),
    [
      'Step 1/3 : FROM busybox',
      ' ---> f382dd7fc0b3',
      'Step 2/3 : RUN for i in 1 2 3 4 5 6 7 8; do echo line $i; done',
      ' ---> Running in 0123456789ab',
      ...[3, 4, 5, 6, 7, 8].map((i) => ` │ line ${i}`),
      '',
    ].join('\n'),
  );
  view.write(' ---> Removed intermediate container 0123456789ab\n ---> 889d54453e9d\n');
  view.write('Step 3/3 : CMD ["sh"]\n ---> a3612bddd283\nSuccessfully built a3612bddd283\n');
  view.finish(false);
  assert.equal(
    screen.text(),
    [
      'Step 1/3 : FROM busybox',
      ' ---> f382dd7fc0b3',
      'Step 2/3 : RUN for i in 1 2 3 4 5 6 7 8; do echo line $i; done',
      ' ---> Running in 0123456789ab',
      ' ---> Removed intermediate container 0123456789ab',
      ' ---> 889d54453e9d',
      'Step 3/3 : CMD ["sh"]',
      ' ---> a3612bddd283',
      'Successfully built a3612bddd283',
      '',
    ].join('\n'),
  );
});

test('window lines fit the width; escapes and carriage returns are not passed through; lines split across chunks', () => {
  const screen = new Screen();
  const view = new LiveBuildView(screen, () => 20);
  view.write(STEP);
  view.write('progress 10%\rprogress 100%\n\x1b[31mred\x1b[0m text\nabcdefghijklmnopqrstuvwxyz\npart');
  view.write('ial\n');
  assert.deepEqual(screen.lines.slice(2), [' │ progress 100%', ' │ red text', ' │ abcdefghijklmno…', ' │ partial', '']);
});

test('a failing step: its whole output stays on screen', () => {
  const screen = new Screen();
  const view = new LiveBuildView(screen, () => 80);
  view.write(STEP);
  for (let i = 1; i <= 8; i++) view.write(`line ${i}\n`);
  view.finish(true);
  assert.deepEqual(screen.lines.slice(2), [...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => `line ${i}`), '']);
});
