/** Reads `daemon.json` with dockerd's keys; a missing default file is fine, a broken one is not. */
import { promises as fs } from 'node:fs';
import { errnoCode } from '../util/errors.js';
import type { DaemonConfig } from '../model/daemon-config.js';

export async function applyDaemonJson(config: DaemonConfig, file: string, mustExist: boolean): Promise<void> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' && !mustExist) return;
    throw new Error(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`invalid config file ${file}: ${(err as Error).message}`);
  }
  config.raw = j;
  const str = (k: string) => (typeof j[k] === 'string' ? (j[k] as string) : undefined);
  const bool = (k: string) => (typeof j[k] === 'boolean' ? (j[k] as boolean) : undefined);
  const strs = (k: string) => (Array.isArray(j[k]) ? (j[k] as unknown[]).map(String) : undefined);
  if (strs('hosts')) config.hosts = strs('hosts')!;
  if (str('data-root')) config.dataRoot = str('data-root')!;
  if (str('exec-root')) config.execRoot = str('exec-root')!;
  if (str('pidfile')) config.pidfile = str('pidfile')!;
  if (str('log-level')) config.logLevel = str('log-level')!;
  if (bool('tlsverify') !== undefined) config.tlsVerify = bool('tlsverify')!;
  if (str('tlscacert')) config.tlsCaCert = str('tlscacert');
  if (str('tlscert')) config.tlsCert = str('tlscert');
  if (str('tlskey')) config.tlsKey = str('tlskey');
  if (str('default-runtime')) config.defaultRuntime = str('default-runtime')!;
  if (typeof j.runtimes === 'object' && j.runtimes) Object.assign(config.runtimes, j.runtimes);
  if (str('cgroup-parent')) config.cgroupParent = str('cgroup-parent')!;
  if (str('bridge')) config.bridge = str('bridge')!;
  if (str('bip')) config.bip = str('bip');
  if (Array.isArray(j['default-address-pools'])) config.defaultAddressPools = j['default-address-pools'] as DaemonConfig['defaultAddressPools'];
  if (bool('iptables') !== undefined) config.iptables = bool('iptables')!;
  if (bool('ip-forward') !== undefined) config.ipForward = bool('ip-forward')!;
  if (strs('dns')) config.dns = strs('dns')!;
  if (bool('dns-forward') !== undefined) config.dnsForward = bool('dns-forward')!;
  if (strs('plugin-dirs')) config.pluginDirs = strs('plugin-dirs')!;
  if (bool('live-restore') !== undefined) config.liveRestore = bool('live-restore')!;
  if (str('log-driver')) config.logDriver = str('log-driver')!;
  if (j['log-opts'] !== undefined) {
    const o = j['log-opts'];
    if (typeof o !== 'object' || o === null || Array.isArray(o) || Object.values(o).some((v) => typeof v !== 'string')) {
      throw new Error(`invalid config file ${file}: log-opts must be an object of strings`);
    }
    config.logOpts = o as Record<string, string>;
  }
  if (strs('registry-mirrors')) config.registryMirrors = strs('registry-mirrors')!;
  if (strs('insecure-registries')) config.insecureRegistries = strs('insecure-registries')!;
  const count = (k: string) => {
    const v = j[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new Error(`invalid config file ${file}: "${k}" must be a positive integer`);
    return v;
  };
  config.maxConcurrentDownloads = count('max-concurrent-downloads') ?? config.maxConcurrentDownloads;
  config.maxConcurrentUploads = count('max-concurrent-uploads') ?? config.maxConcurrentUploads;
  if (str('cluster-store')) config.clusterStore = str('cluster-store')!;
  if (str('cluster-advertise')) config.clusterAdvertise = str('cluster-advertise')!;
  if (typeof j['cluster-store-opts'] === 'object' && j['cluster-store-opts'])
    config.clusterStoreOpts = Object.fromEntries(
      Object.entries(j['cluster-store-opts'] as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
    );
}
