/**
 * The daemon's settings: dockerd's flag names, overridable by `daemon.json` (`--config-file`).
 * Every host-visible name berthd creates (runtime root, cgroup parent, bridges, firewall table) is
 * derived from these settings, so that several berthd can run side by side.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { DaemonConfig } from '../model/daemon-config.js';


export const DEFAULT_SOCKET = '/run/berth/berth.sock';

export function defaultConfig(): DaemonConfig {
  return {
    hosts: [],
    dataRoot: '/var/lib/berth',
    execRoot: '/run/berth',
    pidfile: '',
    logLevel: 'info',
    tlsVerify: false,
    insecureTcp: false,
    defaultRuntime: 'crun',
    runtimes: { crun: { path: 'crun' }, runc: { path: 'runc' } },
    cgroupParent: '',
    instance: '',
    bridge: '',
    defaultAddressPools: [],
    iptables: true,
    ipForward: true,
    dns: [],
    dnsForward: true,
    pluginDirs: [],
    liveRestore: true,
    logDriver: 'json-file',
    logOpts: {},
    registryMirrors: [],
    insecureRegistries: [],
    maxConcurrentDownloads: 3,
    maxConcurrentUploads: 5,
    clusterStore: '',
    clusterAdvertise: '',
    clusterStoreOpts: {},
    raw: {},
  };
}

/** Fills the derived names once flags and daemon.json are merged. */
export function finalizeConfig(c: DaemonConfig): DaemonConfig {
  if (c.hosts.length === 0) c.hosts = [`unix://${path.join(c.execRoot, 'berth.sock')}`];
  if (!c.pidfile) c.pidfile = path.join(c.execRoot, 'berthd.pid');
  const isDefault = c.dataRoot === '/var/lib/berth';
  if (!c.instance) c.instance = isDefault ? '' : createHash('sha256').update(c.dataRoot).digest('hex').slice(0, 6);
  if (!c.cgroupParent) c.cgroupParent = c.instance ? `berth-${c.instance}` : 'berth';
  if (!c.bridge) c.bridge = c.instance ? `bt${c.instance}` : 'berth0';
  return c;
}
