import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRequest, execOptions } from './engine-types.js';
import { checkGoJson, decodeGoJson } from './go-json.js';

const refused = (value: unknown, type = createRequest) => {
  try {
    checkGoJson(value, type);
  } catch (err) {
    return (err as Error & { kind?: string }).kind === 'invalid'
      ? (err as Error).message
      : `not a 400: ${err}`;
  }
  return undefined;
};

test('Go decoding rules: null is a zero value, unknown fields pass, names match case-insensitively', () => {
  assert.equal(
    refused({ Image: 'busybox', Labels: null, HostConfig: null, Whatever: [1, { x: 2 }] }),
    undefined,
  );
  assert.equal(refused({ image: 'busybox', cmd: 'echo hi', entrypoint: ['sh'] }), undefined);
  assert.match(refused({ labels: { a: 1 } }) ?? '', /CreateRequest\.Labels of type string/);
  assert.match(refused({ Cmd: [1] }) ?? '', /cannot unmarshal number/);
});

test('integers must be whole and in range; the path names the innermost struct', () => {
  assert.match(
    refused({ HostConfig: { Memory: 1.5 } }) ?? '',
    /^invalid JSON: json: cannot unmarshal number 1\.5 into Go struct field HostConfig\.HostConfig\.Memory of type int64$/,
  );
  assert.match(refused({ HostConfig: { BlkioWeight: 70000 } }) ?? '', /number 70000 .* of type uint16/);
  assert.match(
    refused({ HostConfig: { Mounts: [{ TmpfsOptions: { Mode: -1 } }] } }) ?? '',
    /Go struct field TmpfsOptions\.HostConfig\.Mounts\.TmpfsOptions\.Mode of type uint32/,
  );
  assert.equal(refused({ HostConfig: { Memory: 1 << 30, PidsLimit: -1 } }), undefined);
});

test('top-level shapes and fixed-length arrays', () => {
  assert.match(refused('x', execOptions) ?? '', /cannot unmarshal string into Go value of type ExecOptions/);
  assert.match(refused({ ConsoleSize: ['a', 1] }, execOptions) ?? '', /ConsoleSize of type uint64/);
  assert.equal(refused({ Cmd: ['sh'], ConsoleSize: [24, 80] }, execOptions), undefined);
});

test('decoding hands on what dockerd sees: canonical names, a lone string as a StrSlice', () => {
  const body = decodeGoJson<Record<string, unknown>>(
    { image: 'busybox', cmd: 'echo hi', HostConfig: { capadd: 'NET_ADMIN', CapDrop: ['ALL'] } },
    createRequest,
  );
  assert.deepEqual(body, {
    Image: 'busybox',
    Cmd: ['echo hi'],
    HostConfig: { CapAdd: ['NET_ADMIN'], CapDrop: ['ALL'] },
  });
  assert.deepEqual(decodeGoJson({ Cmd: 'true' }, execOptions), { Cmd: ['true'] });
  const stored = { Labels: { a: 'b' }, cmd: 'x' };
  checkGoJson(stored, createRequest);
  assert.deepEqual(stored, { Labels: { a: 'b' }, cmd: 'x' }, 'checking alone changes nothing');
});
