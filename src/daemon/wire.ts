/** Assembles the engine services from the config, bottom layer first. */
import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { openBuildService } from '../build/service.js';
import { ContainerService } from '../containers/service.js';
import { FileContentStore } from '../content/file-store.js';
import { LayerMetadata } from '../distribution/layer-metadata.js';
import { RegistrySettings } from '../distribution/registries.js';
import { DistributionService } from '../distribution/service.js';
import { openImageService } from '../images/service.js';
import { openRootfsStore } from '../layers/overlay.js';
import { openNetworkService } from '../network/service.js';
import { openVolumeService } from '../volumes/service.js';
import { readJsonOr, writeJsonAtomic } from '../util/fsx.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import { EventBus } from '../model/events.js';
import type { Backend } from '../api/backend.js';
import type { ContainerDirectory } from '../model/container-directory.js';
import { ConmonRuntime } from '../runtime/conmon.js';
import { clusterSettings } from '../cluster/config.js';
import type { ClusterStore } from '../cluster/store.js';
import { log } from '../util/log.js';

/** The cluster store when configured; a bad configuration is reported, not fatal (no overlay then). */
async function openCluster(config: DaemonConfig, engineId: string): Promise<ClusterStore | undefined> {
  if (!config.clusterStore) return undefined;
  // Loaded only with a cluster store: the etcd client (gRPC) costs ≈ 25 MiB of RSS once imported.
  const { ClusterStore } = await import('../cluster/store.js');
  const identity = { engineId, name: os.hostname() };
  try {
    const settings = clusterSettings(config.clusterStore, config.clusterAdvertise, config.clusterStoreOpts, os.networkInterfaces());
    return await ClusterStore.open(settings, identity);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    log.error('cluster store misconfigured; overlay networks unavailable', { store: config.clusterStore, err: why });
    return ClusterStore.broken(config.clusterStore, config.clusterAdvertise, why, identity);
  }
}

export async function wireServices(config: DaemonConfig): Promise<Backend> {
  const root = config.dataRoot;
  const events = new EventBus();
  const idFile = path.join(root, 'engine-id.json');
  let { id } = await readJsonOr<{ id?: string }>(idFile, {});
  if (!id) {
    id = randomUUID();
    await writeJsonAtomic(idFile, { id });
  }
  const content = await FileContentStore.open(path.join(root, 'content'));
  // The container directory is known only once containers are loaded; lower layers get it lazily.
  let containers: ContainerService | undefined;
  const directory: ContainerDirectory = {
    get: (ref: string) => containers!.get(ref),
    list: () => containers!.list(),
  };
  const rootfs = await openRootfsStore({ root: path.join(root, 'overlay'), content });
  const images = await openImageService({ root: path.join(root, 'image'), content, rootfs, events, containers: directory });
  const cluster = await openCluster(config, id);
  const networks = await openNetworkService({ config, events, containers: directory, cluster });
  // Registration starts once the network layer can republish its endpoints under the lease.
  cluster?.start();
  const volumes = await openVolumeService({ config, events, containers: directory });
  const runtime = new ConmonRuntime(config.execRoot, config.runtimes);
  containers = await ContainerService.open({ config, events, images, rootfs, networks, volumes, runtime });
  const distribution = new DistributionService({
    images,
    layers: rootfs,
    registries: new RegistrySettings({ mirrors: config.registryMirrors, insecure: config.insecureRegistries }),
    metadata: await LayerMetadata.open(path.join(root, 'distribution')),
    maxConcurrentDownloads: config.maxConcurrentDownloads,
    maxConcurrentUploads: config.maxConcurrentUploads,
  });
  const builds = await openBuildService({ root: path.join(root, 'build'), images, rootfs, containers, distribution });
  return { config, events, content, images, rootfs, networks, volumes, containers, distribution, builds, cluster, id, startedAt: new Date() };
}
