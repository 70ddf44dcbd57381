/**
 * Garbage collection: deletes blobs no manifest in any repository references (and their
 * repository links). Safe beside running registries on the same root: the sweep runs inside the gc
 * fence (no manifest write or blob link in any process meanwhile, gc-fence.ts), after a second
 * mark of what was written during the first; blobs younger than the grace period are spared (just
 * uploaded or mounted, their manifest may still come); uploads in progress live outside the store.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { RegistryStorage } from './storage.js';

export interface GcOptions {
  dryRun: boolean;
  /** Blobs modified less than this long ago are never deleted. */
  graceSeconds: number;
  /** Also remove uploads untouched for this long (0 = leave them). */
  uploadTTLSeconds?: number;
  log?: (line: string) => void;
}

export interface GcResult {
  repositories: number;
  manifests: number;
  marked: number;
  deleted: { digest: string; size: number }[];
  sparedYoung: number;
  freedBytes: number;
  uploadsRemoved: number;
}

async function listDir(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
}

function referencedBy(body: Buffer): string[] {
  let m: any;
  try {
    m = JSON.parse(body.toString('utf8'));
  } catch {
    return [];
  }
  const out: string[] = [];
  const add = (d: any) => {
    if (d && typeof d.digest === 'string') out.push(d.digest);
  };
  add(m?.config);
  for (const l of Array.isArray(m?.layers) ? m.layers : []) add(l);
  for (const c of Array.isArray(m?.manifests) ? m.manifests : []) add(c);
  return out;
}

export async function collectGarbage(storage: RegistryStorage, opts: GcOptions): Promise<GcResult> {
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const marked = new Set<string>();
  const seen = new Set<string>();
  let manifests = 0;
  /** Marks every manifest revision not seen yet and what it references; returns the repositories. */
  const mark = async (): Promise<string[]> => {
    const repos = await storage.listRepositories();
    for (const repo of repos) {
      const revRoot = path.join(storage.repoDir(repo), '_manifests', 'revisions');
      for (const alg of await listDir(revRoot)) {
        for (const hex of await listDir(path.join(revRoot, alg))) {
          const digest = `${alg}:${hex}`;
          if (seen.has(`${repo}@${digest}`)) continue;
          seen.add(`${repo}@${digest}`);
          manifests++;
          marked.add(digest);
          try {
            for (const d of referencedBy(await storage.content.read(digest))) marked.add(d);
          } catch {
            log(`warning: ${repo}: manifest ${digest} is missing from the blob store`);
          }
        }
      }
    }
    return repos;
  };
  // Mark everything while writers go on (the long part), then hold writers off, mark what they
  // wrote meanwhile, and sweep: nothing can come to reference a blob between its check and its
  // deletion, and no link is made to a blob about to go (gc-fence.ts).
  await mark();
  const deleted: { digest: string; size: number }[] = [];
  let sparedYoung = 0;
  const cutoff = started - opts.graceSeconds * 1000;
  const sweep = async (stillOwned: () => Promise<boolean>) => {
    const repos = await mark();
    for await (const b of storage.content.list()) {
      if (marked.has(b.digest)) continue;
      const st = await fs.stat(storage.content.pathOf(b.digest)).catch(() => undefined);
      if (!st) continue;
      // Young blobs were just uploaded or mounted: a manifest naming them may still come.
      if (st.mtimeMs > cutoff) {
        sparedYoung++;
        continue;
      }
      if (!opts.dryRun) {
        if (!(await stillOwned())) throw new Error('gc: the sweep lock was taken away as stale; stopping');
        await storage.content.delete(b.digest);
        for (const repo of repos) await storage.unlinkBlob(repo, b.digest);
      }
      deleted.push(b);
      log(`${opts.dryRun ? 'would delete' : 'deleted'} ${b.digest} (${b.size} bytes)`);
    }
    return repos;
  };
  // A dry run deletes nothing and need not hold writers off.
  const repos = opts.dryRun ? await sweep(async () => true) : await storage.fence.sweep(sweep);
  let uploadsRemoved = 0;
  if (!opts.dryRun && opts.uploadTTLSeconds)
    uploadsRemoved = await storage.purgeUploads(opts.uploadTTLSeconds * 1000);
  return {
    repositories: repos.length,
    manifests,
    marked: marked.size,
    deleted,
    sparedYoung,
    freedBytes: deleted.reduce((a, b) => a + b.size, 0),
    uploadsRemoved,
  };
}
