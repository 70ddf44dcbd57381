/**
 * Removes the network objects a test daemon with this instance tag left on the host (see
 * src/network/names.ts): network namespaces `berth<tag>-*`, links `bt<tag>` (default bridge),
 * `bb<tag>*` (user bridges), `vb<tag>*` (veth host ends), the nft table `ip berth_<tag>`, and the
 * ACCEPT rules commented `berth-<tag>` in iptables' FORWARD chain.
 */
import { promises as fs } from 'node:fs';
import { runCmd } from './run.js';

export async function cleanupNetwork(instance: string, _base: string): Promise<void> {
  if (!/^[0-9a-f]{6}$/.test(instance)) return;
  let netns: string[] = [];
  try {
    netns = await fs.readdir('/run/netns');
  } catch {}
  for (const n of netns.filter((x) => x.startsWith(`berth${instance}-`)))
    await runCmd('ip', ['netns', 'del', n], { timeoutMs: 10_000 }).catch(() => {});
  const links = await runCmd('ip', ['-j', 'link', 'show'], { timeoutMs: 10_000 }).catch(() => undefined);
  const names =
    links?.code === 0 ? (JSON.parse(links.stdout || '[]') as { ifname: string }[]).map((l) => l.ifname) : [];
  const ours = names.filter(
    (n) => n === `bt${instance}` || n.startsWith(`bb${instance}`) || n.startsWith(`vb${instance}`),
  );
  // veths before bridges (deleting one end of a veth removes the other too).
  ours.sort((a, b) => (a.startsWith('vb') ? 0 : 1) - (b.startsWith('vb') ? 0 : 1));
  for (const l of ours) await runCmd('ip', ['link', 'del', 'dev', l], { timeoutMs: 10_000 }).catch(() => {});
  await runCmd('nft', ['delete', 'table', 'ip', `berth_${instance}`], { timeoutMs: 10_000 }).catch(() => {});
  const fwd = await runCmd('iptables', ['-w', '-S', 'FORWARD'], { timeoutMs: 10_000 }).catch(() => undefined);
  if (fwd?.code === 0) {
    for (const line of fwd.stdout.split('\n')) {
      if (!line.startsWith('-A FORWARD ') || !line.includes(`--comment berth-${instance} `)) continue;
      await runCmd('iptables', ['-w', '-D', 'FORWARD', ...line.slice('-A FORWARD '.length).split(' ')], {
        timeoutMs: 10_000,
      }).catch(() => {});
    }
  }
}
