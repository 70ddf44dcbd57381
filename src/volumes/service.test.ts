import assert from 'node:assert/strict';
import { existsSync, promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ContainerRecord } from '../model/container.js';
import { defaultConfig, finalizeConfig } from '../daemon/config.js';
import { EventBus } from '../model/events.js';
import { notFound } from '../util/errors.js';
import { mountedPaths } from './local.js';
import { type LocalVolumeService, openVolumeService } from './service.js';

function record(
  id: string,
  name: string,
  host: Partial<ContainerRecord['HostConfig']> = {},
  volumes: Record<string, object> = {},
): ContainerRecord {
  return {
    Id: id,
    Name: `/${name}`,
    Config: { Volumes: volumes, Labels: {}, User: '' },
    HostConfig: host,
    Mounts: [],
  } as unknown as ContainerRecord;
}

describe('volume service (local driver, container life cycle)', () => {
  let base: string;
  let svc: LocalVolumeService;
  const containers = new Map<string, ContainerRecord>();
  const events: string[] = [];
  let rootfs: string;

  const open = async () => {
    const config = finalizeConfig({
      ...defaultConfig(),
      dataRoot: path.join(base, 'data'),
      execRoot: path.join(base, 'run'),
    });
    const bus = new EventBus();
    bus.on('event', (e) => events.push(`${e.Action}:${e.Actor.ID}`));
    return openVolumeService({
      config,
      events: bus,
      containers: {
        get: (ref) => {
          for (const c of containers.values()) if (c.Id === ref || c.Name === `/${ref}`) return c;
          throw notFound(`No such container: ${ref}`);
        },
        list: () => [...containers.values()],
      },
    });
  };

  before(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'berth-volsvc-'));
    rootfs = path.join(base, 'rootfs');
    await fs.mkdir(path.join(rootfs, 'app'), { recursive: true });
    await fs.writeFile(path.join(rootfs, 'app', 'seed.txt'), 'from image');
    svc = await open();
  });
  after(async () => {
    for (const m of [...mountedPaths()].filter((p) => p.startsWith(base)).sort((a, b) => b.length - a.length))
      await import('../util/exec.js').then(({ run }) => run('umount', ['-l', m], { allowFail: true }));
    await fs.rm(base, { recursive: true, force: true });
  });

  it('plans binds, named, anonymous and tmpfs mounts; copies image content up once', async () => {
    const bindSrc = path.join(base, 'host-dir');
    const c1 = record(
      'c1'.padEnd(64, '0'),
      'c1',
      { Binds: ['named1:/data', `${bindSrc}:/host:ro`], Tmpfs: { '/run': 'size=1m' } },
      { '/app': {} },
    );
    containers.set(c1.Id, c1);
    const points = await svc.prepare(c1, []);
    const anon = points.find((p) => p.Destination === '/app');
    assert.ok(anon?.Name && /^[0-9a-f]{64}$/.test(anon.Name));
    assert.equal(points.find((p) => p.Destination === '/data')?.Mode, 'z');
    const { oci } = await svc.mount(c1, rootfs);
    assert.ok(existsSync(bindSrc), '-v creates a missing host directory');
    const app = oci.find((m) => m.destination === '/app')!;
    assert.equal(readFileSync(path.join(app.source!, 'seed.txt'), 'utf8'), 'from image');
    assert.deepEqual(oci.find((m) => m.destination === '/host')?.options, ['rbind', 'rprivate', 'ro']);
    assert.equal(oci.find((m) => m.destination === '/run')?.type, 'tmpfs');
    assert.ok(events.includes('create:named1') && events.includes('mount:named1'));
    await assert.rejects(svc.remove('named1'), /remove named1: volume is in use - \[c1/);
    await svc.unmount(c1);
    await svc.unmount(c1); // idempotent
    assert.equal(events.filter((e) => e === 'unmount:named1').length, 1);

    // --volumes-from shares the same volumes, read-only on request.
    const c2 = record('c2'.padEnd(64, '0'), 'c2', { VolumesFrom: ['c1:ro'] });
    containers.set(c2.Id, c2);
    const p2 = await svc.prepare(c2, []);
    assert.equal(p2.find((p) => p.Destination === '/app')?.Name, anon.Name);
    assert.equal(p2.find((p) => p.Destination === '/data')?.RW, false);
    assert.equal(
      p2.some((p) => p.Destination === '/run'),
      false,
    );

    // Removing c1 with -v keeps the anonymous volume while c2 uses it.
    await svc.release(c1, true);
    containers.delete(c1.Id);
    assert.ok((await svc.list()).Volumes.some((v) => v.Name === anon.Name));
    await svc.release(c2, true);
    containers.delete(c2.Id);
    const names = (await svc.list()).Volumes.map((v) => v.Name);
    assert.ok(!names.includes(anon.Name!), 'anonymous volume removed with its last container');
    assert.ok(names.includes('named1'), 'named volume kept');
  });

  it('refuses bad specs before creating anything', async () => {
    const before = (await svc.list()).Volumes.length;
    const bad = record('c3'.padEnd(64, '0'), 'c3', { Binds: ['newvol:/x', '/a:relative'] });
    await assert.rejects(svc.prepare(bad, []), /mount path must be absolute/);
    const dup = record('c4'.padEnd(64, '0'), 'c4', {
      Binds: ['v1:/x'],
      Mounts: [{ Type: 'tmpfs', Target: '/x' }],
    });
    await assert.rejects(svc.prepare(dup, []), /Duplicate mount point: \/x/);
    const slash = record('c5'.padEnd(64, '0'), 'c5', { Binds: ['a/b:/x'] });
    await assert.rejects(
      svc.prepare(slash, []),
      /create a\/b: "a\/b" includes invalid characters for a local volume name/,
    );
    await assert.rejects(
      svc.prepare(
        record('c6'.padEnd(64, '0'), 'c6', {
          Mounts: [{ Type: 'bind', Source: '/nonexistent-berth', Target: '/x' }],
        }),
        [],
      ),
      /bind source path does not exist/,
    );
    assert.equal((await svc.list()).Volumes.length, before);
  });

  it('tmpfs-backed local volume is mounted for its users only, and state survives a restart', async () => {
    await svc.create({ Name: 'tv', DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });
    await assert.rejects(
      svc.create({ Name: 'bad', DriverOpts: { type: 'tmpfs' } }),
      /missing required option: "device"/,
    );
    await assert.rejects(svc.create({ Name: 'bad', DriverOpts: { foo: 'x' } }), /invalid option: "foo"/);
    const c = record('c7'.padEnd(64, '0'), 'c7', { Binds: ['tv:/t'] });
    containers.set(c.Id, c);
    await svc.prepare(c, []);
    await svc.mount(c, rootfs);
    const data = (await svc.inspect('tv')).Mountpoint;
    assert.ok(mountedPaths().has(data), 'tmpfs mounted while in use');
    // A new service instance (daemon restart) knows the plan and the mount.
    svc = await open();
    await svc.unmount(c);
    assert.ok(!mountedPaths().has(data), 'tmpfs unmounted after the last user stopped');
    await svc.release(c, true);
    containers.delete(c.Id);
    await svc.remove('tv');
    assert.ok(!existsSync(path.dirname(data)));
  });

  it('a device=bind local volume shows the host directory and never deletes it', async () => {
    const dev = path.join(base, 'device-dir');
    await fs.mkdir(dev);
    await fs.writeFile(path.join(dev, 'keep.txt'), 'precious');
    await svc.create({ Name: 'bv', DriverOpts: { type: 'none', o: 'bind', device: dev } });
    const c = record('c8'.padEnd(64, '0'), 'c8', {
      Mounts: [{ Type: 'volume', Source: 'bv', Target: '/b' }],
    });
    containers.set(c.Id, c);
    await svc.prepare(c, []);
    const { oci } = await svc.mount(c, rootfs);
    const src = oci.find((m) => m.destination === '/b')!.source!;
    assert.equal(readFileSync(path.join(src, 'keep.txt'), 'utf8'), 'precious');
    await svc.release(c, true);
    containers.delete(c.Id);
    assert.ok(!mountedPaths().has(src));
    await svc.remove('bv');
    assert.equal(readFileSync(path.join(dev, 'keep.txt'), 'utf8'), 'precious');
  });

  it('list filters and prune', async () => {
    await svc.create({ Name: 'lab1', Labels: { team: 'a' } });
    await svc.create({ Name: 'lab2', Labels: { team: 'b' } });
    const l = await svc.list(new Map([['label', ['team=a']]]));
    assert.deepEqual(
      l.Volumes.map((v) => v.Name),
      ['lab1'],
    );
    assert.deepEqual(
      (await svc.list(new Map([['name', ['lab']]]))).Volumes.map((v) => v.Name),
      ['lab1', 'lab2'],
    );
    await assert.rejects(svc.list(new Map([['bogus', ['x']]])), /invalid filter 'bogus'/);
    const p1 = await svc.prune();
    assert.deepEqual(p1.VolumesDeleted, [], 'named volumes survive a default prune');
    const p2 = await svc.prune(
      new Map([
        ['all', ['true']],
        ['label', ['team=b']],
      ]),
    );
    assert.deepEqual(p2.VolumesDeleted, ['lab2']);
  });
});
