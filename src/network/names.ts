/**
 * Names of every host object berthd creates, derived from the daemon's instance tag so that
 * several daemons (the default one and test daemons) coexist and a test's leftovers can be found.
 * Linux interface names are at most 15 characters.
 */
import { createHash } from 'node:crypto';

export interface HostNames {
  /** nftables table (family ip). */
  table: string;
  /** Prefix of network namespace names (under /run/netns). */
  netnsPrefix: string;
  /** Comment marking rules berthd adds to other tools' chains (iptables FORWARD). */
  ruleComment: string;
  netns(containerId: string): string;
  /** Host end of a veth pair for (container, network). */
  veth(containerId: string, networkId: string): string;
  /** Bridge of a user-defined network. */
  bridge(networkId: string): string;
}

const h = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

export function hostNames(instance: string): HostNames {
  const tag = instance;
  return {
    table: tag ? `berth_${tag}` : 'berth',
    netnsPrefix: `berth${tag}-`,
    ruleComment: tag ? `berth-${tag}` : 'berth',
    netns: (cid) => `berth${tag}-${cid.slice(0, 12)}`,
    // default: vb-<7hex> (10 chars); instance: vb<6hex><7hex> (15 chars)
    veth: (cid, nid) => (tag ? `vb${tag}${h(cid + nid, 7)}` : `vb-${h(cid + nid, 7)}`),
    // default: berth-<8hex> (14 chars); instance: bb<6hex><7hex> (15 chars)
    bridge: (nid) => (tag ? `bb${tag}${nid.slice(0, 7)}` : `berth-${nid.slice(0, 8)}`),
  };
}
