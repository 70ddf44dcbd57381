import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goJson, goPrint, Template } from './template.js';

const run = (src: string, data: unknown) => new Template(src).execute(data);

test('fields, nested fields and dot', () => {
  const data = { State: { Status: 'running', Pid: 42 }, Name: '/web', List: ['a', 'b'] };
  assert.equal(run('{{.State.Status}} {{.State.Pid}} {{.Name}}', data), 'running 42 /web');
  assert.equal(run('{{.List}}', data), '[a b]');
  assert.equal(run('{{.State}}', data), 'map[Pid:42 Status:running]');
  assert.equal(run('{{.Missing}}', data), '<no value>');
  assert.equal(run('{{.}}', 'x'), 'x');
  assert.equal(run('{{.Nil}}', { Nil: null }), '<nil>');
});

test('json function and pipes keep the daemon key order', () => {
  const data = { Config: { Labels: { b: '1', a: '<2>' } } };
  assert.equal(run('{{json .Config.Labels}}', data), '{"b":"1","a":"<2>"}');
  assert.equal(run('{{.Config.Labels | json}}', data), '{"b":"1","a":"<2>"}');
  assert.equal(goJson({ a: '<x>&' }, true), '{"a":"\\u003cx\\u003e\\u0026"}');
});

test('if / else if / else / with / range with variables', () => {
  const t = '{{if eq .S "a"}}A{{else if eq .S "b"}}B{{else}}C{{end}}';
  assert.equal(run(t, { S: 'a' }), 'A');
  assert.equal(run(t, { S: 'b' }), 'B');
  assert.equal(run(t, { S: 'z' }), 'C');
  assert.equal(run('{{with .X}}[{{.Y}}]{{else}}none{{end}}', { X: { Y: 1 } }), '[1]');
  assert.equal(run('{{with .X}}[{{.Y}}]{{else}}none{{end}}', { X: null }), 'none');
  const nets = { Networks: { net2: { IP: '10.0.0.2' }, net1: { IP: '10.0.0.1' } } };
  assert.equal(
    run('{{range $k, $v := .Networks}}{{$k}}={{$v.IP}};{{end}}', nets),
    'net1=10.0.0.1;net2=10.0.0.2;',
  );
  assert.equal(run('{{range .Networks}}{{.IP}} {{end}}', nets), '10.0.0.1 10.0.0.2 ');
  assert.equal(run('{{range .L}}x{{else}}empty{{end}}', { L: [] }), 'empty');
  assert.equal(run('{{$n := .Name}}{{range .L}}{{$n}}{{.}}{{end}}', { Name: 'n', L: [1, 2] }), 'n1n2');
});

test('functions: index, join, split, upper, lower, title, pad, truncate, len, printf, not, and, or', () => {
  const data = { Labels: { 'com.x': 'v' }, Args: ['a', 'b'], S: 'hello world' };
  assert.equal(run('{{index .Labels "com.x"}}', data), 'v');
  assert.equal(run('{{join .Args ","}}', data), 'a,b');
  assert.equal(run('{{split .S " "}}', data), '[hello world]');
  assert.equal(run('{{upper .S}}|{{title .S}}|{{lower "AB"}}', data), 'HELLO WORLD|Hello World|ab');
  assert.equal(run('{{pad .S 1 2}}|{{truncate .S 5}}|{{len .Args}}', data), ' hello world  |hello|2');
  assert.equal(run('{{printf "%s-%d" .S 3}}', data), 'hello world-3');
  assert.equal(run('{{if not .X}}no{{end}}{{if and .S .Args}}yes{{end}}{{or .X "d"}}', data), 'noyesd');
  assert.equal(run('{{println "a" "b"}}', data), 'a b\n');
});

test('trim markers and parse errors', () => {
  assert.equal(run('a  {{- .X -}}  b', { X: 1 }), 'a1b');
  assert.throws(() => new Template('{{.X'), /unclosed action/);
  assert.throws(() => new Template('{{if .X}}'), /unexpected EOF/);
  assert.throws(() => run('{{nosuch .X}}', {}), /not defined/);
});

test('goPrint formats numbers as Go does', () => {
  assert.equal(goPrint(1234567), '1234567');
  assert.equal(goPrint(0.5), '0.5');
  assert.equal(goPrint(true), 'true');
});
