/** Placeholder until the overlay layer store lands. */
import type { ContentStore } from '../content/index.js';
import { notImplemented } from '../util/errors.js';
import type { RootfsStore } from './index.js';

export interface RootfsStoreOptions {
  root: string;
  content: ContentStore;
}

export async function openRootfsStore(_opts: RootfsStoreOptions): Promise<RootfsStore> {
  const no = async (): Promise<never> => {
    throw notImplemented('layers are not implemented');
  };
  return { create: no, mount: no, unmount: no, remove: no, changes: no, diffTar: no, exportTar: no };
}
