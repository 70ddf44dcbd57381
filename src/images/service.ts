/** Placeholder until the image store lands: every lookup is a clean 404. */
import type { ContainerDirectory } from '../containers/directory.js';
import type { ContentStore } from '../content/index.js';
import type { EventBus } from '../daemon/events.js';
import type { RootfsStore } from '../layers/index.js';
import { notFound, notImplemented } from '../util/errors.js';
import type { Image, ImageService } from './index.js';

export interface ImageServiceOptions {
  root: string;
  content: ContentStore;
  rootfs: RootfsStore;
  events: EventBus;
  containers: ContainerDirectory;
}

export async function openImageService(_opts: ImageServiceOptions): Promise<ImageService> {
  return {
    resolve: async (ref: string): Promise<Image> => {
      throw notFound(`No such image: ${ref}`);
    },
    ensureDefault: async () => {},
    commit: async () => {
      throw notImplemented('commit is not implemented');
    },
    count: () => 0,
  };
}
