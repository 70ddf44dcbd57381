/**
 * A FROM (or `--from`) image: the local one, else (always with `--pull`) pulled from its registry
 * with the credentials the client sent in `X-Registry-Config`, the pull's progress in the build's
 * stream.
 */
import { Writable } from 'node:stream';
import type { Image, ImageService } from '../images/index.js';
import { BerthError, invalid } from '../util/errors.js';
import { JsonMessageStream } from '../util/json-message.js';
import { parseReference, type Reference, splitRepo, withDefaultTag } from '../util/reference.js';
import type { BuildOutput, RegistryConfig } from './index.js';

export interface ImageSource {
  images: ImageService;
  pull(ref: Reference, creds: RegistryConfig[string], out: JsonMessageStream): Promise<string>;
}

export async function resolveImage(
  src: ImageSource,
  ref: string,
  opts: { pull?: boolean; registryConfig?: RegistryConfig },
  out: BuildOutput,
): Promise<Image> {
  if (!opts.pull) {
    const local = await src.images.resolve(ref).catch((err) => {
      if (err instanceof BerthError && err.kind === 'not-found') return undefined;
      throw err;
    });
    if (local) return local;
  }
  let parsed: Reference;
  try {
    parsed = withDefaultTag(parseReference(ref));
  } catch {
    throw invalid(`invalid reference format: ${ref}`);
  }
  const host = splitRepo(parsed.repo).domain;
  const creds = opts.registryConfig?.[host] ?? opts.registryConfig?.[`https://${host}`] ?? {};
  const progress = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) out.send(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const id = await src.pull(parsed, creds, new JsonMessageStream(progress));
  return src.images.resolve(id);
}
