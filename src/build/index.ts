/**
 * The builder: `POST /build` and `berth build` make images from a Dockerfile and a context.
 * The API layer parses the request into `BuildOptions` and hands the body over; the service
 * streams the classic builder's lines to `BuildOutput` and returns the image ID.
 */
import type { Readable } from 'node:stream';
import type { HostConfig } from '../model/container.js';
import { BerthError } from '../util/errors.js';
import type { BuildPruneOptions } from './prune.js';

export type { BuildPruneOptions } from './prune.js';

export interface BuildOptions {
  /** `name:tag` references to point at the result. */
  tags: string[];
  /** Path of the Dockerfile inside the context (default `Dockerfile`). */
  dockerfile?: string;
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  target?: string;
  noCache: boolean;
  /** `--cache-from`: images whose history may give cached steps (the classic builder's semantics, cache-from.ts). */
  cacheFrom?: string[];
  /** Only the image ID is printed. */
  quiet: boolean;
  /** Pull FROM images from their registry even when present (`--pull`). */
  pull?: boolean;
  /** Credentials for pulling FROM images, by registry host. */
  registryConfig?: RegistryConfig;
  /** `RUN --mount=type=secret` contents by id (`berth build --secret`); never stored. */
  secrets?: Record<string, Buffer>;
  /** For RUN steps: network mode, extra hosts, resource limits. */
  hostConfig: HostConfig;
}

export interface BuildOutput {
  /** A `{"stream": …}` line. */
  stream(text: string): void;
  /** A `{"aux": …}` record (the image ID after each stage). */
  aux(value: Record<string, unknown>): void;
  /** Any other JSON message (pull progress of a FROM image). */
  send(msg: Record<string, unknown>): void;
}

/** Registry credentials by registry host (`X-Registry-Config`), for FROM images that are pulled. */
export type RegistryConfig = Record<string, { username?: string; password?: string; identitytoken?: string }>;

export interface BuildRequest {
  options: BuildOptions;
  context: Readable;
  contentType?: string;
  signal: AbortSignal;
  /** The client's name for this build (`buildid`), by which `POST /build/cancel` stops it. */
  buildId?: string;
}

export interface BuildCacheRecord {
  ID: string;
  Parents: string[] | null;
  Type: string;
  Description: string;
  InUse: boolean;
  Shared: boolean;
  Size: number;
  CreatedAt: string;
  LastUsedAt: string | null;
  UsageCount: number;
}

export interface BuildService {
  /** Runs a build; the returned ID is also sent as the last aux record. Throws `StepFailed` (with an exit code) for a failing RUN. */
  build(req: BuildRequest, out: BuildOutput): Promise<string>;
  /** `POST /build/cancel`: stops the running build named `buildId`; false when none runs. */
  cancel(buildId: string): boolean;
  /** `POST /build/prune`: drops step entries (and their images when untagged and unused) and empties cache mounts. */
  prune(opts: BuildPruneOptions): Promise<{ CachesDeleted: string[] | null; SpaceReclaimed: number }>;
  /** The build cache for `system df`: step entries and cache mounts. */
  cacheRecords(): Promise<BuildCacheRecord[]>;
}

/** A RUN that exited non-zero: the API reports `errorDetail.code`, so `docker build` exits with it. */
export class StepFailed extends BerthError {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super('invalid', message);
  }
}
