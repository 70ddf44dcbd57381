/** `docker history`: an image's history entries, newest first, with the local image each made. */
import type { HistoryItem, Image, ImageConfig } from './index.js';

export function imageHistory(
  img: Image,
  parentOf: (i: Image) => Image | undefined,
  layerSize: (diffId: string) => number,
): HistoryItem[] {
  const hist = img.config.history?.length
    ? img.config.history
    : img.diffIds.map(
        () =>
          ({ created: img.created, created_by: '', empty_layer: false }) as NonNullable<
            ImageConfig['history']
          >[number],
      );
  // Ancestors known locally name the history entry that made them.
  const ids = new Map<number, Image>();
  ids.set(hist.length - 1, img);
  for (let p = parentOf(img); p; p = parentOf(p)) {
    const n = p.config.history?.length ?? 0;
    if (n > 0 && !ids.has(n - 1)) ids.set(n - 1, p);
  }
  let layer = 0;
  const out: HistoryItem[] = hist.map((h, i) => {
    let size = 0;
    if (!h.empty_layer) {
      const d = img.diffIds[layer++];
      size = d ? layerSize(d) : 0;
    }
    const at = ids.get(i);
    return {
      Id: at?.id ?? '<missing>',
      Created: Math.floor(Date.parse(h.created ?? img.created) / 1000) || 0,
      CreatedBy: h.created_by ?? '',
      Tags: at?.repoTags.length ? at.repoTags : null,
      Size: size,
      Comment: h.comment ?? '',
    };
  });
  return out.reverse();
}
