/** The daemon's settings as every layer reads them; parsed and defaulted by `daemon/config.ts`. */
export interface DaemonConfig {
  hosts: string[];
  dataRoot: string;
  execRoot: string;
  pidfile: string;
  logLevel: string;
  tlsVerify: boolean;
  tlsCaCert?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Allows a plain TCP listener off loopback (insecure; warned about). */
  insecureTcp: boolean;
  defaultRuntime: string;
  runtimes: Record<string, { path: string }>;
  /** cgroupfs parent for containers (e.g. `berth` → /sys/fs/cgroup/<ctrl>/berth/<id>). */
  cgroupParent: string;
  /** Short tag unique to this daemon's settings; prefixes host object names. */
  instance: string;
  /** Network settings (issue: networking). */
  bridge: string;
  bip?: string;
  defaultAddressPools: { base: string; size: number }[];
  iptables: boolean;
  ipForward: boolean;
  dns: string[];
  /** When false, the embedded DNS never forwards to upstream resolvers (tests run so). */
  dnsForward: boolean;
  /** Extra directories to discover volume plugins in. */
  pluginDirs: string[];
  liveRestore: boolean;
  /** Default log driver and its options for new containers (`log-driver`, `log-opts`). */
  logDriver: string;
  logOpts: Record<string, string>;
  /** Docker Hub mirrors (`registry-mirrors`, `--registry-mirror`), tried in order. */
  registryMirrors: string[];
  /** Registries spoken to over plain HTTP (`host[:port]` or a CIDR); loopback always is. */
  insecureRegistries: string[];
  /** Layers pulled at once per pull (`max-concurrent-downloads`, default 3). */
  maxConcurrentDownloads: number;
  /** Layers pushed at once per push (`max-concurrent-uploads`, default 5). */
  maxConcurrentUploads: number;
  /** `--cluster-store etcd://H1:2379[,H2:2379]`: overlay networks across hosts; empty: none. */
  clusterStore: string;
  /** `--cluster-advertise IP|IFACE[:PORT]`: this host's underlay address. */
  clusterAdvertise: string;
  /** `--cluster-store-opt KEY=VALUE`: kv.cacertfile, kv.certfile, kv.keyfile, discovery.ttl. */
  clusterStoreOpts: Record<string, string>;
  /** Anything else daemon.json carried, kept for `info`. */
  raw: Record<string, unknown>;
}
