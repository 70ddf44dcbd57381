/**
 * berthd's firewall: one nftables table of its own (family `ip`, named after the instance),
 * rendered whole from the network state and loaded atomically (`nft -f -`: declare, delete,
 * define in one transaction), so that a reload is idempotent and leaves no stale rule.
 *
 *   prerouting/output (nat)  → `ports`: DNAT of published ports (host addresses and loopback)
 *   postrouting (nat)        masquerade: traffic leaving a non-internal network, loopback clients
 *                            of published ports, hairpin (a container reaching a published port)
 *   forward (filter)         isolation between bridge networks, `--internal`
 *
 * Where another tool's `ip filter FORWARD` chain (iptables, e.g. Docker) has policy DROP, bridged
 * and routed traffic of berthd's bridges would be dropped there; berthd then adds ACCEPT rules for
 * its own bridges to that chain, each carrying its comment, and removes them with the networks.
 */
import { systemError } from '../util/errors.js';
import { ResidentProcess } from '../util/resident-process.js';
import { run } from '../util/exec.js';
import { log } from '../util/log.js';
import type { PortMapping } from './types.js';

export interface FirewallNet {
  ifname: string;
  subnet: string;
  /** The bridge's own address. */
  gateway: string;
  internal: boolean;
  masquerade: boolean;
}

const q = (s: string) => JSON.stringify(s);

function portRules(ports: PortMapping[]): string[] {
  return ports.map((p) => {
    const daddr = p.hostIp && p.hostIp !== '0.0.0.0' ? `ip daddr ${p.hostIp} ` : '';
    return `${daddr}${p.proto} dport ${p.hostPort} dnat to ${p.containerIp}:${p.containerPort}`;
  });
}

/** Replaces the rules of the `ports` chain only (one transaction). */
export function renderPorts(table: string, ports: PortMapping[]): string {
  return (
    [`flush chain ip ${table} ports`, ...portRules(ports).map((r) => `add rule ip ${table} ports ${r}`)].join(
      '\n',
    ) + '\n'
  );
}

export function renderRuleset(table: string, nets: FirewallNet[], ports: PortMapping[]): string {
  const lines: string[] = [];
  lines.push(`table ip ${table} {}`, `delete table ip ${table}`, `table ip ${table} {`);
  lines.push('  chain ports {');
  for (const r of portRules(ports)) lines.push(`    ${r}`);
  lines.push('  }');
  lines.push(
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    '    fib daddr type local jump ports',
    '  }',
  );
  lines.push(
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    '    fib daddr type local jump ports',
    '  }',
  );
  lines.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  for (const n of nets) {
    // Towards the bridge the source is the gateway address: snat (masquerade would look it up per connection).
    lines.push(`    oifname ${q(n.ifname)} ip saddr 127.0.0.0/8 snat to ${n.gateway}`);
    lines.push(`    oifname ${q(n.ifname)} ct status dnat ip saddr ${n.subnet} snat to ${n.gateway}`);
    if (!n.internal && n.masquerade)
      lines.push(`    ip saddr ${n.subnet} oifname != ${q(n.ifname)} masquerade`);
  }
  lines.push('  }');
  lines.push('  chain forward {', '    type filter hook forward priority filter; policy accept;');
  for (const n of nets) {
    if (!n.internal) continue;
    lines.push(`    iifname ${q(n.ifname)} oifname != ${q(n.ifname)} drop`);
    lines.push(`    oifname ${q(n.ifname)} iifname != ${q(n.ifname)} drop`);
  }
  // Published ports are reachable from every network (DNATed traffic passes isolation).
  lines.push('    ct status dnat accept');
  for (const n of nets) {
    const others = nets.filter((o) => o.ifname !== n.ifname).map((o) => q(o.ifname));
    if (others.length) lines.push(`    iifname ${q(n.ifname)} oifname { ${others.join(', ')} } drop`);
  }
  lines.push('  }', '}');
  return lines.join('\n') + '\n';
}

/** One ruleset text as one line of `nft -i` input: one buffer, so still one transaction. */
export function oneLine(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => (l.endsWith('{') ? `${l} ` : `${l} ; `))
    .join('')
    .trim();
}

/**
 * A long-lived `nft -i`: starting nft costs 35–150 ms here (it is a big program and reads the
 * whole ruleset), a command in a running one 3–10 ms. Each ruleset goes as one line (one
 * transaction); a marker line that is a syntax error on purpose tells on stderr that it is done,
 * and any other error text before it is the ruleset's.
 */
class NftShell {
  private current?: ResidentProcess<string>;
  private seq = 0;

  exec(text: string): Promise<void> {
    if (!this.current?.alive) this.current = new ResidentProcess('nft', ['-i'], takeNftMarker);
    const marker = `zqmark${this.seq++}`;
    return this.current.run(`${oneLine(text)}\n${marker}\n`, marker).then((errors) => {
      if (errors) throw systemError(`nft: ${errors}`);
    });
  }

  close(): void {
    this.current?.end();
    this.current = undefined;
  }
}

/** The marker is a syntax error: its own "Error: …" line before it, a caret line after. */
function takeNftMarker(err: string, marker: string): { result: string; rest: string } | undefined {
  const lines = err.split('\n');
  const at = lines.indexOf(marker);
  if (at < 0 || at + 1 >= lines.length - 1) return undefined; // wait for the caret line after it
  const before = lines.slice(0, Math.max(0, at - 1)).filter((l) => l.trim() && !/^\s*\^+\s*$/.test(l));
  return { result: before.join('\n'), rest: lines.slice(at + 2).join('\n') };
}

const nft = new NftShell();

export function closeNftShell(): void {
  nft.close();
}

export class Firewall {
  private syncedFor?: string;
  private appliedNets?: string;

  constructor(
    readonly table: string,
    readonly comment: string,
    readonly enabled: boolean,
  ) {}

  async apply(nets: FirewallNet[], ports: PortMapping[]): Promise<void> {
    if (!this.enabled) return;
    // Only the published ports changed: refill that chain (cheap); the base chains and their
    // hooks stay. Anything else: the whole table again, in one transaction.
    const netsKey = JSON.stringify(nets);
    if (netsKey === this.appliedNets) await nft.exec(renderPorts(this.table, ports));
    else {
      this.appliedNets = undefined;
      await nft.exec(renderRuleset(this.table, nets, ports));
      this.appliedNets = netsKey;
    }
    // Other tools' FORWARD chain is looked at when the set of bridges changes (not per port change).
    const key = nets.map((n) => n.ifname).join(',');
    if (key === this.syncedFor) return;
    this.syncedFor = key;
    await this.syncForwardAccept(nets.map((n) => n.ifname)).catch((err) =>
      log.warn('cannot update FORWARD accept rules', { err }),
    );
  }

  /** Removes the table and every rule berthd added to other chains. */
  async remove(): Promise<void> {
    this.appliedNets = undefined;
    await run('nft', ['delete', 'table', 'ip', this.table], { allowFail: true });
    await this.syncForwardAccept([]).catch(() => {});
  }

  /** ACCEPT rules for our bridges in iptables' FORWARD chain, only when its policy drops. */
  async syncForwardAccept(ifnames: string[]): Promise<void> {
    const chain = await run('nft', ['-j', 'list', 'chain', 'ip', 'filter', 'FORWARD'], { allowFail: true });
    if (chain.code !== 0) return;
    const policyDrop = /"policy":\s*"drop"/.test(chain.stdout);
    const rules = await run('iptables', ['-w', '-S', 'FORWARD'], { allowFail: true });
    if (rules.code !== 0) return;
    const mine = rules.stdout
      .split('\n')
      .filter((l) => l.startsWith('-A FORWARD ') && l.includes(`--comment ${this.comment} `));
    const want = policyDrop ? ifnames.flatMap((i) => [`-i ${i}`, `-o ${i}`]) : [];
    const specOf = (dir: string) => [
      ...dir.split(' '),
      '-m',
      'comment',
      '--comment',
      this.comment,
      '-j',
      'ACCEPT',
    ];
    const have = new Set<string>();
    for (const l of mine) {
      const m = /^-A FORWARD (-[io] \S+) /.exec(l);
      if (m && want.includes(m[1]) && !have.has(m[1])) {
        have.add(m[1]);
        continue;
      }
      await run('iptables', ['-w', '-D', 'FORWARD', ...l.replace(/^-A FORWARD /, '').split(' ')], {
        allowFail: true,
      });
    }
    for (const w of want) if (!have.has(w)) await run('iptables', ['-w', '-I', 'FORWARD', ...specOf(w)]);
  }
}
