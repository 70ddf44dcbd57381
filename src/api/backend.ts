/**
 * What the API's handlers may call: the engine services, by their interfaces (moby's router
 * `Backend`s play this part). `daemon/wire.ts` assembles the concrete ones at boot.
 */
import type { BuildService } from '../build/index.js';
import type { ContainerService } from '../containers/service.js';
import type { ContentStore } from '../content/index.js';
import type { DistributionService } from '../distribution/service.js';
import type { ImageService } from '../images/index.js';
import type { LayerStore, RootfsStore } from '../layers/index.js';
import type { NetworkService } from '../network/index.js';
import type { ClusterStore } from '../cluster/store.js';
import type { DaemonConfig } from '../model/daemon-config.js';
import type { EventBus } from '../model/events.js';
import type { VolumeService } from '../volumes/index.js';

export interface Backend {
  config: DaemonConfig;
  events: EventBus;
  content: ContentStore;
  images: ImageService;
  rootfs: RootfsStore & LayerStore;
  containers: ContainerService;
  networks: NetworkService;
  volumes: VolumeService;
  /** Pull and push through registries. */
  distribution: DistributionService;
  builds: BuildService;
  /** The cluster store (with --cluster-store): its state and live hosts for `/info`. */
  cluster?: ClusterStore;
  /** Daemon identity for `/info`. */
  id: string;
  startedAt: Date;
}
