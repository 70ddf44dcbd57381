import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globToRegExp, grantedBy, parseBasic, parseScope, Policy } from './auth.js';
import { parseRange, splitListen } from './server.js';

test('globs: * stays within a component, ** crosses them, dots are literal', () => {
  assert.ok(globToRegExp('team/*').test('team/app'));
  assert.ok(!globToRegExp('team/*').test('team/app/sub'));
  assert.ok(globToRegExp('team/**').test('team/app/sub'));
  assert.ok(globToRegExp('team/**').test('team'));
  assert.ok(!globToRegExp('a.b/*').test('axb/c'));
});

test('scopes parse with and without a resource class', () => {
  assert.deepEqual(parseScope('repository:library/busybox:pull,push'), {
    type: 'repository',
    name: 'library/busybox',
    actions: ['pull', 'push'],
  });
  assert.deepEqual(parseScope('repository(plugin):x/y:pull'), {
    type: 'repository',
    name: 'x/y',
    actions: ['pull'],
  });
  assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
  assert.equal(parseScope('nonsense'), undefined);
  assert.ok(grantedBy([{ type: 'repository', name: 'a', actions: ['*'] }], 'repository', 'a', 'delete'));
  assert.ok(!grantedBy([{ type: 'repository', name: 'a', actions: ['pull'] }], 'repository', 'a', 'push'));
});

test('policy: first matching rule, groups, anonymous, library/ for admins, user namespaces', () => {
  const p = new Policy({
    admins: ['@ops'],
    groups: { ops: ['olga'], devs: ['bob', 'carol'] },
    userNamespaces: true,
    repositories: [
      { match: 'team/secret', pull: ['bob'] },
      { match: 'team/**', pull: ['+'], push: ['@devs'] },
      { match: 'pub/*', pull: ['*'] },
    ],
  });
  assert.ok(p.allowed(undefined, 'pub/x', 'pull'));
  assert.ok(!p.allowed(undefined, 'pub/x', 'push'));
  assert.ok(!p.allowed(undefined, 'team/app', 'pull'));
  assert.ok(p.allowed('eve', 'team/app', 'pull'));
  assert.ok(p.allowed('carol', 'team/app', 'push'));
  assert.ok(!p.allowed('carol', 'team/secret', 'pull'), 'the first matching rule wins');
  assert.ok(p.allowed('bob', 'team/secret', 'pull'));
  assert.ok(p.allowed(undefined, 'library/busybox', 'pull'));
  assert.ok(!p.allowed('bob', 'library/busybox', 'push'));
  assert.ok(p.allowed('olga', 'library/busybox', 'push'));
  assert.ok(p.allowed('bob', 'bob/tool', 'delete'));
  assert.ok(!p.allowed('carol', 'bob/tool', 'pull'));
  assert.deepEqual(
    p.grant('carol', { type: 'repository', name: 'team/x', actions: ['pull', 'push', 'delete'] }),
    ['pull', 'push'],
  );
  assert.deepEqual(p.grant('bob', { type: 'registry', name: 'catalog', actions: ['*'] }), []);
  assert.deepEqual(p.grant('olga', { type: 'registry', name: 'catalog', actions: ['*'] }), ['*']);
});

test('Basic credentials, byte ranges and listen addresses parse', () => {
  assert.deepEqual(parseBasic(`Basic ${Buffer.from('u:p:q').toString('base64')}`), {
    user: 'u',
    password: 'p:q',
  });
  assert.equal(parseBasic('Bearer x'), undefined);
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=50-500', 100), { start: 50, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), null);
  assert.equal(parseRange('bytes=5-1', 100), null);
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
  assert.deepEqual(splitListen('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
  assert.deepEqual(splitListen('[::1]:5001'), { host: '::1', port: 5001 });
  assert.deepEqual(splitListen(':5002'), { host: '0.0.0.0', port: 5002 });
});
