/**
 * The registry client as the API calls it: `pull` and `push` of a parsed reference, with progress
 * as Docker's JSON messages. Pulled images land in the image store; pushed ones are read from it.
 */
import type { ImageService } from '../images/index.js';
import type { LayerStore } from '../layers/index.js';
import { notFound } from '../util/errors.js';
import type { JsonMessageStream } from '../util/json-message.js';
import type { Reference } from '../util/reference.js';
import type { Credentials } from './client.js';
import { pull } from './pull.js';
import { push } from './push.js';

export type { Credentials };

export class DistributionService {
  constructor(private readonly deps: { images: ImageService; layers: LayerStore }) {}

  /** Pulls `ref` (a tag, `latest` when it names none, or a digest); returns the image ID. */
  pull(ref: Reference, creds: Credentials, out: JsonMessageStream): Promise<string> {
    return pull(this.deps, ref, creds, out);
  }

  /** Pushes one tag, or every local tag of the repository when `ref` names none (as Docker). */
  async push(ref: Reference, creds: Credentials, out: JsonMessageStream): Promise<void> {
    const tags = ref.tag
      ? [ref.tag]
      : this.deps.images
          .list()
          .flatMap((i) => i.repoTags)
          .filter((t) => t.startsWith(`${ref.repo}:`))
          .map((t) => t.slice(ref.repo.length + 1));
    if (tags.length === 0) throw notFound(`An image does not exist locally with the tag: ${ref.repo}`);
    for (const tag of tags) await push(this.deps, { repo: ref.repo, tag }, creds, out);
  }
}
