/**
 * Networking before the bridge driver lands: `none` (and `default`) give the container a private
 * network namespace with loopback only; `host` shares the host's. Replaced by the full service.
 */
import type { ContainerDirectory } from '../containers/directory.js';
import type { ContainerRecord } from '../containers/types.js';
import type { DaemonConfig } from '../daemon/config.js';
import type { EventBus } from '../daemon/events.js';
import { notFound } from '../util/errors.js';
import type { NetworkAttachment, NetworkService } from './index.js';

export interface NetworkServiceOptions {
  config: DaemonConfig;
  events: EventBus;
  containers: ContainerDirectory;
}

class LoopbackOnlyNetworks implements NetworkService {
  async validate(record: ContainerRecord): Promise<void> {
    const mode = record.HostConfig.NetworkMode ?? 'default';
    if (!['default', 'none', 'host', 'bridge'].includes(mode)) throw notFound(`network ${mode} not found`);
  }
  async attach(record: ContainerRecord): Promise<NetworkAttachment> {
    const host = record.HostConfig.NetworkMode === 'host';
    return {
      hostNetwork: host,
      hosts: [],
      addresses: [],
      resolvConf: 'nameserver 127.0.0.1\n',
      settings: { ...record.NetworkSettings, Networks: {} },
    };
  }
  async detach(): Promise<void> {}
  async restore(): Promise<void> {}
  async close(): Promise<void> {}
}

export async function openNetworkService(_opts: NetworkServiceOptions): Promise<NetworkService> {
  return new LoopbackOnlyNetworks();
}
