/**
 * Another tool's iptables FORWARD chain with policy DROP (as Docker leaves it): berthd adds ACCEPT
 * rules for its bridges there, marked with its comment, removes exactly those, and touches no
 * other rule. Run inside a private network namespace so the host's firewall is never changed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { REPO } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

const SCRIPT = `
import { closeNftShell, Firewall } from './src/network/firewall.js';
import { run } from './src/util/exec.js';
const sh = async (c, a) => (await run(c, a, { allowFail: true })).stdout;
await run('iptables', ['-w', '-P', 'FORWARD', 'DROP']);
await run('iptables', ['-w', '-A', 'FORWARD', '-i', 'other0', '-j', 'ACCEPT']);
const fw = new Firewall('berth_fwtest', 'berth-fwtest', true);
const nets = [{ ifname: 'bbfwtest1', subnet: '10.9.1.0/24', gateway: '10.9.1.1', internal: false, masquerade: true }];
await fw.apply(nets, []);
const afterAdd = await sh('iptables', ['-w', '-S', 'FORWARD']);
await new Firewall('berth_fwtest', 'berth-fwtest', true).apply(nets, []);
const afterAgain = await sh('iptables', ['-w', '-S', 'FORWARD']);
await fw.remove();
const afterRemove = await sh('iptables', ['-w', '-S', 'FORWARD']);
const table = await sh('nft', ['list', 'tables']);
console.log(JSON.stringify({ afterAdd, afterAgain, afterRemove, table }));
closeNftShell();
`;

test('ACCEPT rules in a DROP FORWARD chain: added once, removed exactly', async () => {
  const ns = `berthfwtest-${randomBytes(3).toString('hex')}`;
  await runCmd('ip', ['netns', 'add', ns]);
  try {
    const r = await runCmd(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', SCRIPT],
      { cwd: REPO, timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const mine = (s: string) => s.split('\n').filter((l) => l.includes('berth-fwtest'));
    assert.deepEqual(mine(out.afterAdd).sort(), [
      '-A FORWARD -i bbfwtest1 -m comment --comment berth-fwtest -j ACCEPT',
      '-A FORWARD -o bbfwtest1 -m comment --comment berth-fwtest -j ACCEPT',
    ]);
    assert.equal(mine(out.afterAgain).length, 2, 'idempotent');
    assert.deepEqual(mine(out.afterRemove), []);
    assert.match(out.afterRemove, /-P FORWARD DROP/);
    assert.match(out.afterRemove, /-A FORWARD -i other0 -j ACCEPT/, "another tool's rule is kept");
    assert.doesNotMatch(out.table, /berth_fwtest/);
  } finally {
    await runCmd('ip', ['netns', 'del', ns]);
  }
});
