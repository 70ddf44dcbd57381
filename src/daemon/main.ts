/** berthd: flags as dockerd names them, daemon.json, the data-root lock, then the API. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { ApiServer } from '../api/server.js';
import { log, setLogLevel } from '../util/log.js';
import { defaultConfig, finalizeConfig } from './config.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import { applyDaemonJson } from './daemon-json.js';
import { lockDataRoot } from './lock.js';
import { prepareHost } from '../runtime/host-prep.js';
import { wireServices } from './wire.js';
import { validateInsecureRegistry, validateMirror } from '../distribution/registries.js';

const collect = (v: string, prev: string[]) => prev.concat([v]);

function isLoopback(host: string): boolean {
  const h = new URL(host.replace(/^tcp:/, 'http:')).hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

async function main(argv: string[]): Promise<void> {
  process.title = 'berthd';
  const program = new Command('berthd')
    .description('Berth container engine daemon')
    .option('-H, --host <addr>', 'daemon socket(s) to listen on (unix://PATH, tcp://HOST:PORT)', collect, [])
    .option('--data-root <dir>', 'root directory of persistent state')
    .option('--exec-root <dir>', 'root directory of runtime state')
    .option('-p, --pidfile <file>', 'path of the daemon PID file')
    .option('--config-file <file>', 'daemon configuration file', '/etc/berth/daemon.json')
    .option('-l, --log-level <level>', 'debug, info, warn, error, fatal')
    .option('-D, --debug', 'enable debug mode')
    .option('--tlsverify', 'use TLS and verify the remote client certificate')
    .option('--tls', 'use TLS; implied by --tlsverify')
    .option('--tlscacert <file>', 'trust certs signed only by this CA')
    .option('--tlscert <file>', 'path to TLS certificate file')
    .option('--tlskey <file>', 'path to TLS key file')
    .option('--insecure-tcp', 'allow a plain TCP listener on a non-loopback address (insecure)')
    .option('--default-runtime <name>', 'default OCI runtime for containers (crun, runc)')
    .option('--cgroup-parent <name>', 'parent cgroup for all containers')
    .option('-b, --bridge <name>', 'attach containers to a network bridge')
    .option('--bip <cidr>', 'network bridge IP')
    .option('--default-address-pool <spec>', 'default address pools for user networks (base=CIDR,size=N)', collect, [])
    .option('--iptables [bool]', 'enable firewall rule changes')
    .option('--ip-forward [bool]', 'enable net.ipv4.ip_forward')
    .option('--dns <ip>', 'DNS server to use', collect, [])
    .option('--no-dns-forward', 'never forward DNS queries from containers to upstream resolvers')
    .option('--plugin-dir <dir>', 'extra directory to discover volume plugins in', collect, [])
    .option('--registry-mirror <url>', 'preferred Docker Hub mirror (repeatable, tried in order)', collect, [])
    .option('--insecure-registry <host>', 'registry (host[:port] or CIDR) spoken to over plain HTTP', collect, [])
    .option('--max-concurrent-downloads <n>', 'maximum concurrent layer downloads per pull (default 3)')
    .option('--max-concurrent-uploads <n>', 'maximum concurrent layer uploads per push (default 5)')
    .option('--cluster-store <url>', 'cluster store for overlay networks (etcd://HOST:PORT[,HOST:PORT…])')
    .option('--cluster-advertise <addr>', 'address or interface of this host in the cluster (IP|IFACE[:PORT])')
    .option('--cluster-store-opt <kv>', 'cluster store option (kv.cacertfile, kv.certfile, kv.keyfile, discovery.ttl)', collect, [])
    .option('--log-driver <name>', 'default driver for container logs (json-file, k8s-file, none)')
    .option('--log-opt <key=value>', 'default options of the log driver', collect, [])
    .allowExcessArguments(false);
  program.parse(argv, { from: 'user' });
  const o = program.opts();

  const config: DaemonConfig = defaultConfig();
  const explicitConfig = program.getOptionValueSource('configFile') === 'cli';
  await applyDaemonJson(config, o.configFile as string, explicitConfig);
  if ((o.host as string[]).length) config.hosts = o.host as string[];
  if (o.dataRoot) config.dataRoot = path.resolve(o.dataRoot as string);
  if (o.execRoot) config.execRoot = path.resolve(o.execRoot as string);
  if (o.pidfile) config.pidfile = path.resolve(o.pidfile as string);
  if (o.logLevel) config.logLevel = o.logLevel as string;
  if (o.debug) config.logLevel = 'debug';
  if (o.tlsverify) config.tlsVerify = true;
  if (o.tlscacert) config.tlsCaCert = o.tlscacert as string;
  if (o.tlscert) config.tlsCert = o.tlscert as string;
  if (o.tlskey) config.tlsKey = o.tlskey as string;
  if (o.insecureTcp) config.insecureTcp = true;
  if (o.defaultRuntime) config.defaultRuntime = o.defaultRuntime as string;
  if (o.cgroupParent) config.cgroupParent = o.cgroupParent as string;
  if (o.bridge) config.bridge = o.bridge as string;
  if (o.bip) config.bip = o.bip as string;
  for (const spec of o.defaultAddressPool as string[]) {
    const kv = Object.fromEntries(spec.split(',').map((p) => p.split('=', 2)));
    config.defaultAddressPools.push({ base: kv.base, size: Number(kv.size) });
  }
  if (o.iptables !== undefined) config.iptables = o.iptables !== 'false';
  if (o.ipForward !== undefined) config.ipForward = o.ipForward !== 'false';
  if ((o.dns as string[]).length) config.dns = o.dns as string[];
  if (o.dnsForward === false) config.dnsForward = false;
  config.pluginDirs.push(...(o.pluginDir as string[]));
  // As dockerd: the flags add to what daemon.json lists.
  config.registryMirrors.push(...(o.registryMirror as string[]));
  config.insecureRegistries.push(...(o.insecureRegistry as string[]));
  const positive = (name: string, v: unknown) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`invalid --${name} value "${String(v)}": must be a positive integer`);
    return n;
  };
  if (o.maxConcurrentDownloads !== undefined) config.maxConcurrentDownloads = positive('max-concurrent-downloads', o.maxConcurrentDownloads);
  if (o.maxConcurrentUploads !== undefined) config.maxConcurrentUploads = positive('max-concurrent-uploads', o.maxConcurrentUploads);
  // A bad mirror or insecure registry stops the daemon at start, as dockerd does.
  config.registryMirrors = config.registryMirrors.map(validateMirror);
  config.insecureRegistries = config.insecureRegistries.map(validateInsecureRegistry);
  if (o.clusterStore) config.clusterStore = o.clusterStore as string;
  if (o.clusterAdvertise) config.clusterAdvertise = o.clusterAdvertise as string;
  for (const kv of o.clusterStoreOpt as string[]) {
    const i = kv.indexOf('=');
    if (i < 1) throw new Error(`invalid --cluster-store-opt ${kv}: KEY=VALUE expected`);
    config.clusterStoreOpts[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (o.logDriver) config.logDriver = o.logDriver as string;
  for (const kv of o.logOpt as string[]) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`invalid --log-opt ${JSON.stringify(kv)}: expected key=value`);
    config.logOpts[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  finalizeConfig(config);
  setLogLevel(config.logLevel);

  const useTls = Boolean(o.tls || config.tlsVerify || (config.tlsCert && config.tlsKey));
  for (const h of config.hosts) {
    if (h.startsWith('tcp://') && !useTls && !isLoopback(h)) {
      if (!config.insecureTcp) {
        throw new Error(
          `refusing to listen on ${h} without TLS: use --tlsverify with --tlscacert/--tlscert/--tlskey, or --insecure-tcp to force it`,
        );
      }
      log.warn('API listening on a non-loopback TCP address without TLS: anyone who reaches it controls this host', { host: h });
    }
  }

  await fs.mkdir(config.dataRoot, { recursive: true, mode: 0o711 });
  await fs.mkdir(config.execRoot, { recursive: true, mode: 0o711 });
  const lock = await lockDataRoot(config.dataRoot);
  await prepareHost(config);
  await fs.writeFile(config.pidfile, `${process.pid}\n`);

  const services = await wireServices(config);
  // The default image must exist before clients can ask for it (fast when it does already).
  await services.images.ensureDefault().catch((err) => log.error('cannot make the default image', { err }));
  const api = new ApiServer(services);
  await api.listen(
    config.hosts,
    useTls ? { ca: config.tlsCaCert, cert: config.tlsCert ?? '', key: config.tlsKey ?? '', verify: config.tlsVerify } : undefined,
  );
  services.events.publish('daemon', 'start', services.id);
  await services.containers.restore();
  log.info('berthd ready', { dataRoot: config.dataRoot, execRoot: config.execRoot, pid: process.pid });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    await api.close();
    await services.containers.shutdown();
    await services.networks.close();
    await services.cluster?.close();
    await fs.rm(config.pidfile, { force: true });
    lock.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

// One bad stream must not take every container's API down: log and keep serving.
process.on('uncaughtException', (err) => log.error('uncaught exception', { err: err.stack ?? String(err) }));
process.on('unhandledRejection', (err) => log.error('unhandled rejection', { err: err instanceof Error ? (err.stack ?? err.message) : String(err) }));

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`berthd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
