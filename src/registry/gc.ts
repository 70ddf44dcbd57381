/**
 * Garbage collection: deletes blobs no manifest in any repository references (and their
 * repository links). Safe beside a running registry: blobs younger than the grace period are spared
 * (a blob is "young" when it was just uploaded, mounted, or named by a manifest pushed since — the
 * server refreshes a blob's mtime when a manifest references it), uploads in progress live outside
 * the blob store, and each blob's age is checked again right before it is removed.
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
  const repos = await storage.listRepositories();
  let manifests = 0;
  // Mark: every manifest revision of every repository, and what it references.
  for (const repo of repos) {
    const revRoot = path.join(storage.repoDir(repo), '_manifests', 'revisions');
    for (const alg of await listDir(revRoot)) {
      for (const hex of await listDir(path.join(revRoot, alg))) {
        const digest = `${alg}:${hex}`;
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
  // Sweep: unmarked blobs old enough.
  const deleted: { digest: string; size: number }[] = [];
  let sparedYoung = 0;
  const cutoff = started - opts.graceSeconds * 1000;
  const doomed = new Set<string>();
  for await (const b of storage.content.list()) {
    if (marked.has(b.digest)) continue;
    const st = await fs.stat(storage.content.pathOf(b.digest)).catch(() => undefined);
    if (!st) continue;
    if (st.mtimeMs > cutoff) {
      sparedYoung++;
      continue;
    }
    if (!opts.dryRun) {
      // Check again: a manifest pushed meanwhile refreshes the blobs it names.
      const again = await fs.stat(storage.content.pathOf(b.digest)).catch(() => undefined);
      if (!again || again.mtimeMs > cutoff) {
        sparedYoung++;
        continue;
      }
      await storage.content.delete(b.digest);
    }
    doomed.add(b.digest);
    deleted.push(b);
    log(`${opts.dryRun ? 'would delete' : 'deleted'} ${b.digest} (${b.size} bytes)`);
  }
  // Remove repository links to deleted blobs.
  if (!opts.dryRun && doomed.size) {
    for (const repo of repos) {
      for (const d of doomed) await storage.unlinkBlob(repo, d);
    }
  }
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
