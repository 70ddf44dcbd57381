/** The container service: records, the state machine, and the life cycle through the runtime. */
import type { Services } from '../daemon/services.js';
import { notFound, notImplemented } from '../util/errors.js';
import type { ContainerDirectory } from './directory.js';
import type { ContainerRecord } from './types.js';

export class ContainerService implements ContainerDirectory {
  private readonly byId = new Map<string, ContainerRecord>();

  private constructor(private readonly services: Services) {}

  static async open(services: Services): Promise<ContainerService> {
    return new ContainerService(services);
  }

  /** Daemon shutdown: containers keep running (live restore); only watchers are dropped. */
  async shutdown(): Promise<void> {}

  /** Freezes a running container (cgroup freezer); 409 when it is not running. */
  async pause(_ref: string): Promise<void> {
    throw notImplemented('pause is not implemented yet');
  }

  async unpause(_ref: string): Promise<void> {
    throw notImplemented('unpause is not implemented yet');
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  get(ref: string): ContainerRecord {
    const direct = this.byId.get(ref);
    if (direct) return direct;
    const name = ref.startsWith('/') ? ref : `/${ref}`;
    for (const c of this.byId.values()) if (c.Name === name) return c;
    const matches = ref.length > 0 && /^[0-9a-f]+$/.test(ref) ? this.list().filter((c) => c.Id.startsWith(ref)) : [];
    if (matches.length === 1) return matches[0];
    throw notFound(`No such container: ${ref}`);
  }
}
