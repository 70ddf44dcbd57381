import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ociOptions,
  parseBind,
  parseMountSpec,
  parseTmpfs,
  parseVolumesFrom,
  validateLocalName,
} from './specs.js';

describe('parseBind (-v)', () => {
  it('host path → bind, rprivate, created when missing', () => {
    const m = parseBind('/srv/data:/data:ro');
    assert.equal(m.type, 'bind');
    assert.equal(m.source, '/srv/data');
    assert.equal(m.destination, '/data');
    assert.equal(m.rw, false);
    assert.equal(m.propagation, 'rprivate');
    assert.equal(m.createSource, true);
    assert.deepEqual(ociOptions(m), ['rbind', 'rprivate', 'ro']);
  });
  it('name → volume with mode z and copy-up; nocopy turns copy-up off', () => {
    const m = parseBind('vol1:/data');
    assert.equal(m.type, 'volume');
    assert.equal(m.source, 'vol1');
    assert.equal(m.mode, 'z');
    assert.equal(m.copyData, true);
    assert.equal(parseBind('vol1:/data:nocopy').copyData, false);
  });
  it('a bare path is an anonymous volume', () => {
    const m = parseBind('/anon');
    assert.equal(m.type, 'volume');
    assert.equal(m.anonymous, true);
  });
  it('propagation and label modes on binds', () => {
    const m = parseBind('/a:/b:rw,rshared,z');
    assert.equal(m.propagation, 'rshared');
    assert.equal(m.rw, true);
  });
  it('refuses bad specs with Docker words', () => {
    assert.throws(() => parseBind('/a:rw'), /invalid volume specification: '\/a:rw'/);
    assert.throws(() => parseBind('/a:/b:bogus'), /invalid mode: bogus/);
    assert.throws(() => parseBind('/a:relative'), /mount path must be absolute/);
    assert.throws(() => parseBind('/a:/'), /destination can't be '\/'/);
    assert.throws(() => parseBind(':/x'), /invalid volume specification/);
    assert.throws(() => parseBind('/a:/b:ro,rw'), /invalid mode/);
  });
});

describe('parseMountSpec (--mount)', () => {
  const none = () => false;
  it('bind source must exist unless CreateMountpoint', () => {
    assert.throws(
      () => parseMountSpec({ Type: 'bind', Source: '/nonexistent', Target: '/x' }, none),
      /invalid mount config for type "bind": bind source path does not exist: \/nonexistent/,
    );
    const m = parseMountSpec(
      { Type: 'bind', Source: '/x', Target: '/y', BindOptions: { CreateMountpoint: true } },
      none,
    );
    assert.equal(m.createSource, true);
  });
  it('volume options', () => {
    const m = parseMountSpec(
      {
        Type: 'volume',
        Source: 'v',
        Target: '/d',
        ReadOnly: true,
        VolumeOptions: { NoCopy: true, DriverConfig: { Name: 'demo', Options: { a: 'b' } } },
      },
      none,
    );
    assert.equal(m.driver, 'demo');
    assert.deepEqual(m.driverOpts, { a: 'b' });
    assert.equal(m.copyData, false);
    assert.equal(m.rw, false);
  });
  it('tmpfs size and mode', () => {
    const m = parseMountSpec(
      { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1770 } },
      none,
    );
    assert.deepEqual(m.tmpfsOptions, ['mode=1770', 'size=64m']);
    assert.deepEqual(ociOptions(m), ['nosuid', 'nodev', 'noexec', 'mode=1770', 'size=64m']);
  });
  it('extra fields and relative targets are refused', () => {
    assert.throws(
      () => parseMountSpec({ Type: 'tmpfs', Source: 'x', Target: '/t' }, none),
      /field Source must not be specified/,
    );
    assert.throws(
      () => parseMountSpec({ Type: 'volume', Target: 'rel' }, none),
      /mount path must be absolute/,
    );
    assert.throws(
      () => parseMountSpec({ Type: 'bind', Source: 'rel', Target: '/t' }, () => true),
      /mount path must be absolute/,
    );
  });
});

describe('tmpfs and volumes-from', () => {
  it('--tmpfs options; exec drops noexec', () => {
    const m = parseTmpfs('/run', 'rw,exec,size=1m');
    assert.deepEqual(ociOptions(m), ['nosuid', 'nodev', 'size=1m']);
    assert.throws(() => parseTmpfs('rel', ''), /must be absolute/);
    assert.throws(() => parseTmpfs('/t', 'bogus'), /invalid tmpfs option/);
  });
  it('volumes-from modes', () => {
    assert.deepEqual(parseVolumesFrom('web'), { ref: 'web', mode: '' });
    assert.deepEqual(parseVolumesFrom('web:ro'), { ref: 'web', mode: 'ro' });
    assert.throws(() => parseVolumesFrom('web:rshared'), /invalid mode/);
    assert.throws(() => parseVolumesFrom(''), /cannot be an empty string/);
  });
  it('local volume names', () => {
    validateLocalName('ok-name_1.x');
    assert.throws(() => validateLocalName('a/b'), /includes invalid characters for a local volume name/);
    assert.throws(() => validateLocalName('a'), /too short/);
  });
});
