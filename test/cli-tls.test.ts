/** berth over TCP with mutual TLS (flags and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), on loopback. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

let d: TestDaemon | undefined;
let certs: string;
let tcp: string;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function openssl(args: string[]): Promise<void> {
  const r = await runCmd('openssl', args, { cwd: certs });
  assert.equal(r.code, 0, r.stderr);
}

before(async () => {
  certs = mkdtempSync(path.join(tmpdir(), 'berth-cli-tls-'));
  const o = (...a: string[]) => openssl(a.map((x) => (x.startsWith('@') ? path.join(certs, x.slice(1)) : x)));
  await o(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    '@ca-key.pem',
    '-out',
    '@ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=berth-test-ca',
  );
  await o(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    '@server-key.pem',
    '-out',
    '@server.csr',
    '-subj',
    '/CN=127.0.0.1',
  );
  await runCmd('sh', [
    '-c',
    `printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > ${certs}/server.ext; printf 'extendedKeyUsage=clientAuth\\n' > ${certs}/client.ext`,
  ]);
  await o(
    'x509',
    '-req',
    '-in',
    '@server.csr',
    '-CA',
    '@ca.pem',
    '-CAkey',
    '@ca-key.pem',
    '-CAcreateserial',
    '-out',
    '@server-cert.pem',
    '-days',
    '1',
    '-extfile',
    '@server.ext',
  );
  await o(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    '@key.pem',
    '-out',
    '@client.csr',
    '-subj',
    '/CN=client',
  );
  await o(
    'x509',
    '-req',
    '-in',
    '@client.csr',
    '-CA',
    '@ca.pem',
    '-CAkey',
    '@ca-key.pem',
    '-CAcreateserial',
    '-out',
    '@cert.pem',
    '-days',
    '1',
    '-extfile',
    '@client.ext',
  );
  tcp = `tcp://127.0.0.1:${await freePort()}`;
  d = await startDaemon({
    args: [
      '-H',
      tcp,
      '--tlsverify',
      '--tlscacert',
      path.join(certs, 'ca.pem'),
      '--tlscert',
      path.join(certs, 'server-cert.pem'),
      '--tlskey',
      path.join(certs, 'server-key.pem'),
    ],
  });
});

after(async () => {
  await d?.destroy();
  if (certs) rmSync(certs, { recursive: true, force: true });
});

test('berth --tlsverify with explicit certificate flags', async () => {
  const r = await d!.berth([
    '-H',
    tcp,
    '--tlsverify',
    '--tlscacert',
    path.join(certs, 'ca.pem'),
    '--tlscert',
    path.join(certs, 'cert.pem'),
    '--tlskey',
    path.join(certs, 'key.pem'),
    'version',
    '--format',
    '{{.Server.APIVersion}}',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '1.50\n');
});

test('DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI reads them', async () => {
  const env = { BERTH_HOST: tcp, DOCKER_HOST: tcp, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs };
  const [a, b] = await Promise.all([
    d!.docker(['images', '--format', '{{.Repository}}'], { env }),
    d!.berth(['images', '--format', '{{.Repository}}'], { env }),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, a.stdout);
});

test('without a client certificate the daemon refuses the connection', async () => {
  const r = await d!.berth(['-H', tcp, '--tlsverify', '--tlscacert', path.join(certs, 'ca.pem'), 'images'], {
    env: { DOCKER_CERT_PATH: path.join(certs, 'none') },
  });
  assert.notEqual(r.code, 0);
});
