import assert from 'node:assert/strict';
import { promises as fs, mkdtempSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { discoverPlugin, PLUGIN_MIME, PluginRegistry, scanPlugins } from './plugins.js';

describe('volume plugin discovery and client', () => {
  let dir: string;
  let server: http.Server;
  const seen: { url: string; accept: string; body: string }[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'berth-plugins-'));
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', accept: String(req.headers.accept), body });
        res.setHeader('Content-Type', PLUGIN_MIME);
        if (req.url === '/Plugin.Activate') return res.end(JSON.stringify({ Implements: ['VolumeDriver'] }));
        if (req.url === '/VolumeDriver.Mount')
          return res.end(JSON.stringify({ Mountpoint: '/srv/x', Err: '' }));
        if (req.url === '/VolumeDriver.Remove') {
          res.statusCode = 500;
          return res.end(JSON.stringify({ Err: 'busy' }));
        }
        res.end(JSON.stringify({ Err: '' }));
      });
    });
    await fs.mkdir(path.join(dir, 'nested'));
    await new Promise<void>((r) => server.listen(path.join(dir, 'nested', 'nested.sock'), () => r()));
    await fs.writeFile(path.join(dir, 'byspec.spec'), `unix://${path.join(dir, 'nested', 'nested.sock')}\n`);
    await fs.writeFile(
      path.join(dir, 'byjson.json'),
      JSON.stringify({ Name: 'byjson', Addr: 'tcp://127.0.0.1:1' }),
    );
    await fs.writeFile(path.join(dir, 'bad.spec'), 'no scheme here');
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('finds sockets (also <name>/<name>.sock), .spec and .json files', async () => {
    assert.equal(
      (await discoverPlugin('nested', [dir]))?.addr,
      `unix://${path.join(dir, 'nested', 'nested.sock')}`,
    );
    assert.equal(
      (await discoverPlugin('byspec', [dir]))?.addr,
      `unix://${path.join(dir, 'nested', 'nested.sock')}`,
    );
    assert.equal((await discoverPlugin('byjson', [dir]))?.addr, 'tcp://127.0.0.1:1');
    assert.equal(await discoverPlugin('bad', [dir]), undefined);
    assert.equal(await discoverPlugin('../etc', [dir]), undefined);
    const names = await scanPlugins([dir]);
    for (const n of ['nested', 'byspec', 'byjson']) assert.ok(names.includes(n), `${n} in ${names}`);
  });

  it('activates once, sends the plugin MIME type, passes Err through', async () => {
    const reg = new PluginRegistry([dir]);
    const c = await reg.get('byspec');
    assert.equal(await c.mount('v', 'id1'), '/srv/x');
    await c.unmount('v', 'id1');
    await assert.rejects(c.remove('v'), /busy/);
    assert.deepEqual(
      seen.map((s) => s.url),
      ['/Plugin.Activate', '/VolumeDriver.Mount', '/VolumeDriver.Unmount', '/VolumeDriver.Remove'],
    );
    assert.equal(seen[0].accept, PLUGIN_MIME);
    assert.deepEqual(JSON.parse(seen[1].body), { Name: 'v', ID: 'id1' });
    await assert.rejects(
      reg.get('nosuch'),
      /error looking up volume plugin nosuch: plugin "nosuch" not found/,
    );
  });
});
