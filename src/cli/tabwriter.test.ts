import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderRows, row } from './formatter.js';
import { tabwrite } from './tabwriter.js';

test('column blocks as Go tabwriter (docker version layout, minwidth 20, padding 1)', () => {
  const text =
    'Client:\n Version:\t28.2.2\n API version:\t1.50\n\nServer: X\n Engine:\n  Version:\t28.2.2\n  API version:\t1.50 (minimum version 1.24)\n';
  assert.equal(
    tabwrite(text, 20, 1),
    'Client:\n Version:           28.2.2\n API version:       1.50\n\nServer: X\n Engine:\n  Version:          28.2.2\n  API version:      1.50 (minimum version 1.24)\n',
  );
});

test('a block widens to its longest cell plus padding; the last cell is not padded', () => {
  assert.equal(
    tabwrite('a\tb\tc\nlonger-than-ten\tbb\tc\n', 10, 3),
    'a                 b         c\nlonger-than-ten   bb        c\n',
  );
});

test('docker ps style table: header, empty trailing columns', () => {
  const rows = [row({ ID: 'abc', Image: 'busybox', Names: 'web', Ports: '' })];
  const out = renderRows('table {{.ID}}\t{{.Image}}\t{{.Ports}}\t{{.Names}}', rows, {
    ID: 'CONTAINER ID',
    Image: 'IMAGE',
    Ports: 'PORTS',
    Names: 'NAMES',
  });
  assert.equal(out, 'CONTAINER ID   IMAGE     PORTS     NAMES\nabc            busybox             web\n');
  assert.equal(renderRows('table {{.ID}}', [], { ID: 'CONTAINER ID' }), 'CONTAINER ID\n');
  assert.equal(renderRows('{{.ID}}:{{.Image}}', rows, {}), 'abc:busybox\n');
  assert.equal(renderRows('json', rows, {}), '{"ID":"abc","Image":"busybox","Names":"web","Ports":""}\n');
});
