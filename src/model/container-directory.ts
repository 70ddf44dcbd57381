import type { ContainerRecord } from './container.js';

/**
 * Read access to containers for the layers below the container service (networks resolve
 * `container:<id>` and connect targets, volumes resolve --volumes-from and "in use" checks).
 */
export interface ContainerDirectory {
  /** By full ID, exact name (with or without '/'), or unique ID prefix; 404 `No such container: x`. */
  get(ref: string): ContainerRecord;
  list(): ContainerRecord[];
}
