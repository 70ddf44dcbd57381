/**
 * Access control: htpasswd users (bcrypt), Docker token auth (challenge → token endpoint → Bearer),
 * per-repository permissions, the `library/` namespace, 401 vs 403 wording, forged and expired
 * tokens, Basic auth mode, and skopeo going through the token flow.
 */
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { runCmd } from '../helpers/run.js';
import {
  makeBusyboxLayout,
  type Proc,
  pushImage,
  REGISTRY_BIN,
  request,
  startRegistry,
  tempDir,
} from './helpers.js';

const PASSWORDS: Record<string, string> = { admin: 'admin-pw', bob: 'bob-pw', carol: 'carol-pw' };
const basic = (u: string, p = PASSWORDS[u]) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const ACCESS = {
  admins: ['admin'],
  groups: { devs: ['bob', 'carol'] },
  repositories: [
    { match: 'public/**', pull: ['*'], push: ['@devs'] },
    { match: 'private/**', pull: ['@devs'], push: ['bob'], delete: ['bob'] },
  ],
};

let work: string;
let htpasswd: string;
before(async () => {
  work = tempDir('berth-reg-auth-');
  const lines: string[] = [];
  for (const [u, p] of Object.entries(PASSWORDS)) {
    // The CLI's own helper writes the bcrypt lines.
    const r = await runCmd(process.execPath, [REGISTRY_BIN, 'htpasswd', u], { input: `${p}\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${u}:\\$2[aby]\\$`));
    lines.push(r.stdout.trim());
  }
  htpasswd = path.join(work, 'htpasswd');
  await fs.writeFile(htpasswd, lines.join('\n') + '\n');
});
after(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

const errOf = (r: { json(): any }) => r.json().errors[0];

describe('token auth', () => {
  let reg: Proc;
  const token = async (user: string | undefined, ...scopes: string[]) => {
    const q = new URLSearchParams({ service: 'berth-registry' });
    for (const s of scopes) q.append('scope', s);
    const r = await request(reg.url, 'GET', `/token?${q}`, {
      headers: user ? { Authorization: basic(user) } : {},
    });
    assert.equal(r.status, 200, r.body.toString());
    const j = r.json();
    assert.equal(j.token, j.access_token);
    assert.ok(j.expires_in > 0 && j.issued_at);
    return `Bearer ${j.token}`;
  };
  before(async () => {
    reg = await startRegistry({ config: { auth: { type: 'token', htpasswd }, access: ACCESS } });
  });
  after(async () => {
    await reg?.destroy();
  });

  test('GET /v2/ without credentials: 401 with a Bearer challenge naming the token endpoint', async () => {
    const r = await request(reg.url, 'GET', '/v2/');
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], `Bearer realm="${reg.url}/token",service="berth-registry"`);
    assert.deepEqual(errOf(r).code, 'UNAUTHORIZED');
    assert.equal(errOf(r).message, 'authentication required');
    assert.equal(
      (await request(reg.url, 'GET', '/v2/', { headers: { Authorization: await token('bob') } })).status,
      200,
    );
  });

  test('writers push and anyone pulls a public repository', async () => {
    const push = await token('bob', 'repository:public/app:pull,push');
    const img = await pushImage(reg.url, 'public/app', { tag: 'v1', headers: { Authorization: push } });
    const anon = await token(undefined, 'repository:public/app:pull');
    const r = await request(reg.url, 'GET', '/v2/public/app/manifests/v1', {
      headers: { Authorization: anon },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, img.manifest);
    // No token at all is fine for anonymous pulls of public content too.
    assert.equal((await request(reg.url, 'GET', '/v2/public/app/tags/list')).status, 200);
    // But an anonymous push is challenged with the scope it needs.
    const p = await request(reg.url, 'POST', '/v2/public/app/blobs/uploads/', {
      headers: { Authorization: anon },
    });
    assert.equal(p.status, 401);
    assert.equal(
      p.headers['www-authenticate'],
      `Bearer realm="${reg.url}/token",service="berth-registry",scope="repository:public/app:pull,push",error="insufficient_scope"`,
    );
  });

  test('private repositories: 401 for anonymous, 403 DENIED for a user without the right', async () => {
    const bob = await token('bob', 'repository:private/x:pull,push');
    await pushImage(reg.url, 'private/x', { tag: 't', headers: { Authorization: bob } });
    const anon = await token(undefined, 'repository:private/x:pull');
    let r = await request(reg.url, 'GET', '/v2/private/x/manifests/t', { headers: { Authorization: anon } });
    assert.equal(r.status, 401);
    assert.equal(errOf(r).code, 'UNAUTHORIZED');
    r = await request(reg.url, 'GET', '/v2/private/x/manifests/t');
    assert.equal(r.status, 401);
    // carol may pull but not push: the token endpoint grants only pull.
    const carol = await token('carol', 'repository:private/x:pull,push');
    const claims = jose.decodeJwt(carol.slice(7)) as { access: { actions: string[] }[]; sub: string };
    assert.deepEqual(claims.access[0].actions, ['pull']);
    assert.equal(claims.sub, 'carol');
    assert.equal(
      (await request(reg.url, 'GET', '/v2/private/x/manifests/t', { headers: { Authorization: carol } }))
        .status,
      200,
    );
    r = await request(reg.url, 'POST', '/v2/private/x/blobs/uploads/', { headers: { Authorization: carol } });
    assert.equal(r.status, 403);
    assert.equal(errOf(r).code, 'DENIED');
    assert.equal(errOf(r).message, 'requested access to the resource is denied');
    r = await request(reg.url, 'DELETE', '/v2/private/x/manifests/t', { headers: { Authorization: carol } });
    assert.equal(r.status, 403);
  });

  test('library/ is official: anyone pulls, only administrators push', async () => {
    const bob = await token('bob', 'repository:library/busybox:pull,push');
    const r = await request(reg.url, 'POST', '/v2/library/busybox/blobs/uploads/', {
      headers: { Authorization: bob },
    });
    assert.equal(r.status, 403);
    assert.equal(errOf(r).message, 'requested access to the resource is denied');
    const admin = await token('admin', 'repository:library/busybox:pull,push');
    await pushImage(reg.url, 'library/busybox', { tag: 'latest', headers: { Authorization: admin } });
    const anon = await token(undefined, 'repository:library/busybox:pull');
    assert.equal(
      (
        await request(reg.url, 'HEAD', '/v2/library/busybox/manifests/latest', {
          headers: { Authorization: anon },
        })
      ).status,
      200,
    );
  });

  test('users own their namespace; the catalog is for administrators', async () => {
    const bob = await token('bob', 'repository:bob/tool:pull,push');
    await pushImage(reg.url, 'bob/tool', { tag: 'x', headers: { Authorization: bob } });
    const carol = await token('carol', 'repository:bob/tool:pull');
    assert.equal(
      (await request(reg.url, 'GET', '/v2/bob/tool/tags/list', { headers: { Authorization: carol } })).status,
      403,
    );
    const bobCat = await token('bob', 'registry:catalog:*');
    assert.equal(
      (await request(reg.url, 'GET', '/v2/_catalog', { headers: { Authorization: bobCat } })).status,
      403,
    );
    const adminCat = await token('admin', 'registry:catalog:*');
    const cat = await request(reg.url, 'GET', '/v2/_catalog', { headers: { Authorization: adminCat } });
    assert.equal(cat.status, 200);
    assert.ok(cat.json().repositories.includes('bob/tool'));
  });

  test('wrong passwords, forged, expired and foreign tokens are refused with 401', async () => {
    const bad = await request(
      reg.url,
      'GET',
      '/token?service=berth-registry&scope=repository:public/app:pull',
      {
        headers: { Authorization: basic('bob', 'nope') },
      },
    );
    assert.equal(bad.status, 401);
    const unknownUser = await request(reg.url, 'GET', '/token?service=berth-registry', {
      headers: { Authorization: basic('mallory', 'x') },
    });
    assert.equal(unknownUser.status, 401);
    const access = [{ type: 'repository', name: 'private/x', actions: ['pull', 'push'] }];
    const sign = async (
      key: CryptoKey | Uint8Array | jose.KeyObject,
      claims: { exp: number; aud?: string },
    ) =>
      new jose.SignJWT({ access })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer('berth-registry-token-issuer')
        .setAudience(claims.aud ?? 'berth-registry')
        .setSubject('bob')
        .setIssuedAt()
        .setExpirationTime(claims.exp)
        .sign(key);
    const now = Math.floor(Date.now() / 1000);
    const other = await jose.generateKeyPair('ES256');
    const realKey = await jose.importJWK(
      JSON.parse(readFileSync(path.join(reg.base, 'root', 'auth', 'token-key.jwk'), 'utf8')),
      'ES256',
    );
    const forged = await sign(other.privateKey, { exp: now + 300 });
    const expired = await sign(realKey, { exp: now - 60 });
    const foreign = await sign(realKey, { exp: now + 300, aud: 'some-other-registry' });
    const valid = await sign(realKey, { exp: now + 300 });
    for (const [what, t] of [
      ['forged', forged],
      ['expired', expired],
      ['foreign', foreign],
      ['garbage', 'abc.def.ghi'],
    ]) {
      const r = await request(reg.url, 'GET', '/v2/private/x/tags/list', {
        headers: { Authorization: `Bearer ${t}` },
      });
      assert.equal(r.status, 401, what);
      assert.equal(errOf(r).code, 'UNAUTHORIZED');
      assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/, what);
    }
    assert.equal(
      errOf(
        await request(reg.url, 'GET', '/v2/private/x/tags/list', {
          headers: { Authorization: `Bearer ${expired}` },
        }),
      ).message,
      'token expired',
    );
    // The same claims signed with the registry's key do work (so the refusals above are about the token).
    assert.equal(
      (
        await request(reg.url, 'GET', '/v2/private/x/tags/list', {
          headers: { Authorization: `Bearer ${valid}` },
        })
      ).status,
      200,
    );
    // And the server keeps serving.
    assert.equal((await request(reg.url, 'GET', '/healthz')).status, 200);
  });

  test('the token endpoint also takes an OAuth2 password grant by POST', async () => {
    const form = (pw: string) =>
      new URLSearchParams({
        grant_type: 'password',
        username: 'bob',
        password: pw,
        service: 'berth-registry',
        scope: 'repository:public/app:pull',
      }).toString();
    const ok = await request(reg.url, 'POST', '/token', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form(PASSWORDS.bob),
    });
    assert.equal(ok.status, 200);
    const claims = jose.decodeJwt(ok.json().access_token) as { sub: string; access: { actions: string[] }[] };
    assert.equal(claims.sub, 'bob');
    assert.deepEqual(claims.access[0].actions, ['pull']);
    const bad = await request(reg.url, 'POST', '/token', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form('x'),
    });
    assert.equal(bad.status, 401);
  });

  test('Basic credentials are accepted directly on a token registry', async () => {
    assert.equal(
      (
        await request(reg.url, 'GET', '/v2/private/x/tags/list', {
          headers: { Authorization: basic('carol') },
        })
      ).status,
      200,
    );
    const r = await request(reg.url, 'GET', '/v2/private/x/tags/list', {
      headers: { Authorization: basic('carol', 'wrong') },
    });
    assert.equal(r.status, 401);
  });

  test('skopeo goes through the token flow with credentials; denied without the right', async () => {
    const layout = path.join(work, 'layout');
    await makeBusyboxLayout(layout);
    const env = { ...process.env, REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
    const ok = await runCmd(
      'skopeo',
      [
        '--insecure-policy',
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        `bob:${PASSWORDS.bob}`,
        `oci:${layout}:latest`,
        `docker://${reg.host}/public/bb:1`,
      ],
      { timeoutMs: 60_000, env },
    );
    assert.equal(ok.code, 0, ok.stderr);
    const denied = await runCmd(
      'skopeo',
      [
        '--insecure-policy',
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        `carol:${PASSWORDS.carol}`,
        `oci:${layout}:latest`,
        `docker://${reg.host}/private/bb:1`,
      ],
      { timeoutMs: 60_000, env },
    );
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /denied|requested access to the resource is denied/);
    assert.equal(
      (
        await request(reg.url, 'GET', '/v2/private/bb/manifests/1', {
          headers: { Authorization: basic('bob') },
        })
      ).status,
      404,
    );
  });
});

describe('basic auth', () => {
  let reg: Proc;
  before(async () => {
    reg = await startRegistry({
      config: { auth: { type: 'basic', htpasswd, realm: 'berth' }, access: ACCESS },
    });
  });
  after(async () => {
    await reg?.destroy();
  });

  test('challenge is Basic; public pulls are anonymous; pushes need a listed user', async () => {
    const r = await request(reg.url, 'GET', '/v2/');
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Basic realm="berth"');
    assert.equal(
      (await request(reg.url, 'GET', '/v2/', { headers: { Authorization: basic('bob') } })).status,
      200,
    );
    await pushImage(reg.url, 'public/b', { tag: 't', headers: { Authorization: basic('carol') } });
    assert.equal((await request(reg.url, 'GET', '/v2/public/b/manifests/t')).status, 200);
    const anonPush = await request(reg.url, 'POST', '/v2/public/b/blobs/uploads/');
    assert.equal(anonPush.status, 401);
    const carolPrivate = await request(reg.url, 'POST', '/v2/private/b/blobs/uploads/', {
      headers: { Authorization: basic('carol') },
    });
    assert.equal(carolPrivate.status, 403);
    assert.equal(errOf(carolPrivate).code, 'DENIED');
    assert.equal((await request(reg.url, 'GET', '/token')).status, 404);
  });
});
