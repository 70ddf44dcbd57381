/**
 * The content store: immutable blobs addressed by digest (`sha256:<hex>` or `sha512:<hex>`).
 * A blob becomes visible only after its digest was verified and it was renamed into place, so a
 * crash never leaves a readable half-written blob. Garbage collection by reference is done by the
 * owners of references (images, registry); the store only lists and deletes.
 */
import type { Readable } from 'node:stream';

export type Digest = string;

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface Expected {
  digest?: Digest;
  size?: number;
  /** Algorithm to hash with when no digest is expected (default sha256). */
  algorithm?: 'sha256' | 'sha512';
}

export interface ContentStore {
  readonly root: string;
  has(digest: Digest): Promise<boolean>;
  info(digest: Digest): Promise<BlobInfo | undefined>;
  /** Filesystem path of a committed blob (for streaming with ranges, or handing to tools). */
  pathOf(digest: Digest): string;
  read(digest: Digest): Promise<Buffer>;
  readStream(digest: Digest, range?: { start: number; end: number }): Readable;
  /** Writes bytes, verifying them against `expected` before they become visible. */
  write(data: Uint8Array, expected?: Expected): Promise<BlobInfo>;
  /** Streams bytes in, verifying them against `expected` before they become visible. */
  ingest(source: Readable, expected?: Expected): Promise<BlobInfo>;
  /**
   * Moves a file whose digest the caller has already computed while writing it (e.g. a resumable
   * registry upload) into the store. The file must be on the same filesystem as the store.
   */
  adoptVerified(file: string, info: BlobInfo): Promise<void>;
  delete(digest: Digest): Promise<boolean>;
  list(): AsyncIterable<BlobInfo>;
}

export { parseDigest, isDigest } from './digest.js';
