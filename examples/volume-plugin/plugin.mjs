#!/usr/bin/env node
/**
 * A small volume plugin speaking Docker's plugin protocol (HTTP + JSON on a unix socket), for
 * trying and testing volume plugins with berthd (or dockerd). Each volume is a directory under
 * --root; Mount/Unmount are reference-counted per caller ID. Every call is appended as one JSON
 * line to --log (if given), so a test can check the exact call sequence.
 *
 *   node examples/volume-plugin/plugin.mjs --socket /run/docker/plugins/demo.sock --root /srv/demo [--log calls.jsonl]
 *
 * Then: docker volume create -d demo v1; docker run -v v1:/data … (berthd finds the socket by name).
 */
import { appendFileSync, mkdirSync, readdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

const MIME = 'application/vnd.docker.plugins.v1.2+json';

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const socket = arg('socket');
const root = arg('root');
const logFile = arg('log');
if (!socket || !root) {
  process.stderr.write('usage: plugin.mjs --socket PATH --root DIR [--log FILE]\n');
  process.exit(2);
}
mkdirSync(root, { recursive: true });
mkdirSync(path.dirname(socket), { recursive: true });

/** name → { created, mounts: Set<id>, opts } */
const volumes = new Map();
for (const name of readdirSync(root)) volumes.set(name, { created: statSync(path.join(root, name)).ctime, mounts: new Set(), opts: {} });

const validName = (n) => typeof n === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n);
const dir = (n) => path.join(root, n);
const view = (n) => {
  const v = volumes.get(n);
  return { Name: n, Mountpoint: v.mounts.size > 0 ? dir(n) : '', CreatedAt: v.created.toISOString(), Status: { mounts: v.mounts.size, opts: v.opts } };
};

const handlers = {
  'Plugin.Activate': () => ({ Implements: ['VolumeDriver'] }),
  'VolumeDriver.Capabilities': () => ({ Capabilities: { Scope: 'local' } }),
  'VolumeDriver.Create': ({ Name, Opts }) => {
    if (!validName(Name)) return { Err: `invalid volume name ${JSON.stringify(Name)}` };
    if (Opts?.fail) return { Err: `refusing to create ${Name}: ${Opts.fail}` };
    if (!volumes.has(Name)) {
      mkdirSync(dir(Name), { recursive: true });
      volumes.set(Name, { created: new Date(), mounts: new Set(), opts: Opts ?? {} });
    }
    return { Err: '' };
  },
  'VolumeDriver.Remove': ({ Name }) => {
    const v = volumes.get(Name);
    if (!v) return { Err: `no such volume ${Name}` };
    if (v.mounts.size > 0) return { Err: `volume ${Name} is mounted by ${[...v.mounts].join(',')}` };
    rmSync(dir(Name), { recursive: true, force: true });
    volumes.delete(Name);
    return { Err: '' };
  },
  'VolumeDriver.Mount': ({ Name, ID }) => {
    const v = volumes.get(Name);
    if (!v) return { Err: `no such volume ${Name}` };
    v.mounts.add(ID);
    return { Mountpoint: dir(Name), Err: '' };
  },
  'VolumeDriver.Unmount': ({ Name, ID }) => {
    const v = volumes.get(Name);
    if (!v) return { Err: `no such volume ${Name}` };
    v.mounts.delete(ID);
    return { Err: '' };
  },
  'VolumeDriver.Path': ({ Name }) => {
    if (!volumes.has(Name)) return { Err: `no such volume ${Name}` };
    return { Mountpoint: volumes.get(Name).mounts.size > 0 ? dir(Name) : '', Err: '' };
  },
  'VolumeDriver.Get': ({ Name }) => (volumes.has(Name) ? { Volume: view(Name), Err: '' } : { Err: `no such volume ${Name}` }),
  'VolumeDriver.List': () => ({ Volumes: [...volumes.keys()].sort().map(view), Err: '' }),
};

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const method = (req.url ?? '/').slice(1);
    let body = {};
    try {
      const text = Buffer.concat(chunks).toString('utf8');
      body = text.trim() ? JSON.parse(text) : {};
    } catch {
      body = {};
    }
    if (logFile) appendFileSync(logFile, `${JSON.stringify({ call: method, body })}\n`);
    const h = handlers[method];
    const out = h ? h(body) : { Err: `unknown method ${method}` };
    res.writeHead(h ? 200 : 404, { 'Content-Type': MIME });
    res.end(JSON.stringify(out));
  });
});

try {
  unlinkSync(socket);
} catch {}
server.listen(socket, () => process.stdout.write(`listening on ${socket}\n`));
for (const sig of ['SIGTERM', 'SIGINT'])
  process.on(sig, () => {
    server.close();
    try {
      unlinkSync(socket);
    } catch {}
    process.exit(0);
  });
