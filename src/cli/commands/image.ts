/** Image commands: images, inspect, rmi, tag, history, prune, import, load, save, pull, push. */
import { createReadStream, existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { ApiError } from '../../client/client.js';
import { type Cli, errorMessage, StatusError } from '../cli.js';
import { renderRows, row } from '../formatter.js';
import { ProgressRenderer, StreamError } from '../progress.js';
import { familiarName, familiarString, fullName, parseRef } from '../reference.js';
import { ellipsis, goTimeString, humanDuration, humanSize, truncateId } from '../units.js';
import { confirm, filtersJson, inspectObjects } from './container.js';
import { pullImage, readConfig, registryAuth } from './pull.js';

const IMAGE_HEADER: Record<string, string> = {
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  VirtualSize: 'SIZE',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
};

function imageRow(img: any, trunc: boolean, repo: string, tag: string, digest: string): object {
  return row({
    ID: trunc ? truncateId(img.Id) : img.Id,
    Repository: repo,
    Tag: tag,
    Digest: digest,
    CreatedSince: img.Created ? `${humanDuration(Date.now() - img.Created * 1000)} ago` : '',
    CreatedAt: goTimeString(img.Created ?? 0),
    Size: humanSize(img.Size ?? 0, 3),
    Containers: img.Containers === -1 || img.Containers === undefined ? 'N/A' : String(img.Containers),
    VirtualSize: humanSize(img.Size ?? 0),
    SharedSize: img.SharedSize === -1 || img.SharedSize === undefined ? 'N/A' : humanSize(img.SharedSize),
    UniqueSize:
      img.SharedSize === -1 || img.SharedSize === undefined
        ? 'N/A'
        : humanSize((img.Size ?? 0) - img.SharedSize),
  });
}

function imageRows(img: any, trunc: boolean, needDigest: boolean, showDigests: boolean): object[] {
  const tags: string[] = img.RepoTags ?? [];
  const digests: string[] = img.RepoDigests ?? [];
  const dangling =
    (tags.length === 0 && digests.length === 0) ||
    (tags.length === 1 &&
      tags[0] === '<none>:<none>' &&
      digests.length === 1 &&
      digests[0] === '<none>@<none>');
  if (dangling) return [imageRow(img, trunc, '<none>', '<none>', '<none>')];
  const repoTags = new Map<string, string[]>();
  const repoDigests = new Map<string, string[]>();
  for (const t of tags) {
    try {
      const r = parseRef(t);
      if (r.tag) {
        const n = familiarName(r);
        repoTags.set(n, [...(repoTags.get(n) ?? []), r.tag]);
      }
    } catch {
      /* skip */
    }
  }
  for (const d of digests) {
    try {
      const r = parseRef(d);
      if (r.digest) {
        const n = familiarName(r);
        repoDigests.set(n, [...(repoDigests.get(n) ?? []), r.digest]);
      }
    } catch {
      /* skip */
    }
  }
  const out: object[] = [];
  for (const [repo, ts] of repoTags) {
    let ds = repoDigests.get(repo) ?? [];
    repoDigests.delete(repo);
    if (!needDigest) ds = [];
    for (const t of ts) {
      if (!ds.length) out.push(imageRow(img, trunc, repo, t, '<none>'));
      else for (const d of ds) out.push(imageRow(img, trunc, repo, t, d));
    }
  }
  for (const [repo, ds] of repoDigests) {
    if (showDigests) for (const d of ds) out.push(imageRow(img, trunc, repo, '<none>', d));
    else out.push(imageRow(img, trunc, repo, '<none>', ''));
  }
  return out;
}

export async function images(
  cli: Cli,
  repository: string | undefined,
  opts: Record<string, any>,
): Promise<void> {
  const filters: string[] = [...(opts.filter ?? [])];
  if (repository) filters.push(`reference=${repository}`);
  const list = await cli.client.get<any[]>('/images/json', {
    all: opts.all || undefined,
    filters: filtersJson(filters),
  });
  let format: string = opts.format || readConfig(cli).imagesFormat || 'table';
  if (format === 'table') {
    if (opts.quiet) format = '{{.ID}}';
    else if (opts.digests)
      format =
        'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}';
    else
      format =
        'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}';
  } else if (opts.quiet) format = '{{.ID}}';
  else if (format.startsWith('table') && opts.digests && !format.includes('{{.Digest}}'))
    format += '\t{{.Digest}}';
  const needDigest = !!opts.digests || format.includes('{{.Digest}}');
  const rows = list.flatMap((img) => imageRows(img, opts.trunc !== false, needDigest, !!opts.digests));
  cli.out(renderRows(format, rows, IMAGE_HEADER));
}

export async function imageInspect(cli: Cli, refs: string[], opts: Record<string, any>): Promise<void> {
  await inspectObjects(cli, refs, opts.format, (ref) => cli.client.get(`/images/${ref}/json`));
}

export async function rmi(cli: Cli, refs: string[], opts: Record<string, any>): Promise<void> {
  const errs: string[] = [];
  for (const r of refs) {
    try {
      const items = await cli.client.json<{ Untagged?: string; Deleted?: string }[]>(
        'DELETE',
        `/images/${r}`,
        {
          query: { force: opts.force || undefined, noprune: opts.prune === false ? true : undefined },
        },
      );
      let out = '';
      for (const it of items ?? []) {
        if (it.Deleted) out += `Deleted: ${it.Deleted}\n`;
        else if (it.Untagged) out += `Untagged: ${it.Untagged}\n`;
      }
      cli.out(out);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      errs.push(errorMessage(err));
    }
  }
  if (errs.length) throw new StatusError(1, errs.join('\n'));
}

export async function tag(cli: Cli, source: string, target: string): Promise<void> {
  let r: ReturnType<typeof parseRef>;
  try {
    r = parseRef(target);
  } catch (err) {
    throw new StatusError(
      1,
      `Error parsing reference: "${target}" is not a valid repository/tag: ${(err as Error).message}`,
    );
  }
  if (r.digest) throw new StatusError(1, 'refusing to create a tag with a digest reference');
  await cli.client.status('POST', `/images/${source}/tag`, {
    query: { repo: fullName(r), tag: r.tag ?? 'latest' },
  });
}

export async function history(cli: Cli, image: string, opts: Record<string, any>): Promise<void> {
  const items = await cli.client.get<any[]>(`/images/${image}/history`);
  const trunc = opts.trunc !== false;
  const human = opts.human !== false;
  const rows = items.map((h) => {
    const createdBy = String(h.CreatedBy ?? '').replace(/\t/g, ' ');
    return row({
      ID: h.Id === '<missing>' || !trunc ? h.Id : truncateId(h.Id),
      CreatedSince: human
        ? `${humanDuration(Date.now() - h.Created * 1000)} ago`
        : new Date(h.Created * 1000).toISOString().replace('.000Z', 'Z'),
      CreatedAt: new Date(h.Created * 1000).toISOString().replace('.000Z', 'Z'),
      CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
      Size: human ? humanSize(h.Size ?? 0, 3) : String(h.Size ?? 0),
      Comment: h.Comment ?? '',
    });
  });
  let format = opts.format || 'table';
  if (opts.quiet) format = '{{.ID}}';
  else if (format === 'table')
    format = 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';
  cli.out(
    renderRows(format, rows, {
      ID: 'IMAGE',
      CreatedSince: 'CREATED',
      CreatedAt: 'CREATED AT',
      CreatedBy: 'CREATED BY',
      Size: 'SIZE',
      Comment: 'COMMENT',
    }),
  );
}

export async function imagePrune(cli: Cli, opts: Record<string, any>): Promise<void> {
  const warning = opts.all
    ? 'WARNING! This will remove all images without at least one container associated to them.'
    : 'WARNING! This will remove all dangling images.';
  if (!opts.force && !(await confirm(cli, warning))) return;
  const filters = [...(opts.filter ?? []), `dangling=${opts.all ? 'false' : 'true'}`];
  const r = await cli.client.post<{
    ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null;
    SpaceReclaimed?: number;
  }>('/images/prune', {
    filters: filtersJson(filters),
  });
  let out = '';
  if (r.ImagesDeleted?.length) {
    out += 'Deleted Images:\n';
    for (const it of r.ImagesDeleted) {
      if (it.Untagged) out += `untagged: ${it.Untagged}\n`;
      if (it.Deleted) out += `deleted: ${it.Deleted}\n`;
    }
    out += '\n';
  }
  out += `Total reclaimed space: ${humanSize(r.SpaceReclaimed ?? 0)}\n`;
  cli.out(out);
}

async function renderStream(
  cli: Cli,
  res: Readable,
  out: NodeJS.WriteStream = process.stdout,
): Promise<void> {
  const r = new ProgressRenderer(out);
  try {
    for await (const m of cli.client.jsonStream(res)) r.write(m);
  } catch (err) {
    if (err instanceof StreamError) throw new StatusError(1, err.message);
    throw err;
  }
}

export async function importImage(
  cli: Cli,
  source: string,
  reference: string | undefined,
  opts: Record<string, any>,
): Promise<void> {
  let repo: string | undefined;
  if (reference) {
    try {
      const r = parseRef(reference);
      repo = familiarString(r);
    } catch (err) {
      throw new StatusError(1, (err as Error).message);
    }
  }
  let body: Readable | undefined;
  let fromSrc = source;
  if (source === '-') body = process.stdin;
  else if (!/^https?:\/\//.test(source)) {
    if (!existsSync(source)) throw new StatusError(1, `open ${source}: no such file or directory`);
    body = createReadStream(source);
    fromSrc = '-';
  }
  const res = await cli.client.request('POST', '/images/create', {
    query: { fromSrc, repo, message: opts.message, changes: opts.change, platform: opts.platform },
    body,
    headers: body ? { 'Content-Type': 'text/plain' } : undefined,
  });
  await renderStream(cli, res);
}

export async function load(cli: Cli, opts: Record<string, any>): Promise<void> {
  let body: Readable;
  if (opts.input) {
    if (!existsSync(opts.input)) throw new StatusError(1, `open ${opts.input}: no such file or directory`);
    body = createReadStream(opts.input);
  } else {
    if (process.stdin.isTTY) throw new StatusError(1, 'requested load from stdin, but stdin is empty');
    body = process.stdin;
  }
  const quiet = !!opts.quiet || !process.stdout.isTTY;
  const res = await cli.client.request('POST', '/images/load', {
    query: { quiet: quiet || undefined },
    body,
    headers: { 'Content-Type': 'application/x-tar' },
  });
  await renderStream(cli, res);
}

export async function save(cli: Cli, names: string[], opts: Record<string, any>): Promise<void> {
  if (!opts.output && process.stdout.isTTY)
    throw new StatusError(1, 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const res = await cli.client.request('GET', '/images/get', { query: { names } });
  const { pipeline } = await import('node:stream/promises');
  const { createWriteStream } = await import('node:fs');
  await pipeline(res, opts.output ? createWriteStream(opts.output) : process.stdout);
}

export async function pull(cli: Cli, name: string, opts: Record<string, any>): Promise<void> {
  let r: ReturnType<typeof parseRef>;
  try {
    r = parseRef(name);
  } catch (err) {
    throw new StatusError(1, (err as Error).message);
  }
  if (opts.allTags && (r.tag || r.digest)) throw new StatusError(1, "tag can't be used with --all-tags/-a");
  if (!r.tag && !r.digest && !opts.allTags) {
    if (!opts.quiet) cli.out('Using default tag: latest\n');
    r = { ...r, tag: 'latest' };
  }
  try {
    await pullImage(cli, r, process.stdout, {
      platform: opts.platform,
      quiet: !!opts.quiet,
      allTags: !!opts.allTags,
    });
  } catch (err) {
    if (err instanceof StreamError) throw new StatusError(1, err.message);
    throw err;
  }
  cli.out(`${fullName(r)}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}\n`);
}

export async function push(cli: Cli, name: string, opts: Record<string, any>): Promise<void> {
  let r: ReturnType<typeof parseRef>;
  try {
    r = parseRef(name);
  } catch (err) {
    throw new StatusError(1, (err as Error).message);
  }
  if (opts.allTags && r.tag) throw new StatusError(1, "tag can't be used with --all-tags/-a");
  if (!r.tag && !opts.allTags) {
    if (!opts.quiet) cli.out('Using default tag: latest\n');
    r = { ...r, tag: 'latest' };
  }
  const res = await cli.client.request('POST', `/images/${fullName(r)}/push`, {
    query: { tag: opts.allTags ? undefined : r.tag, platform: opts.platform, compression: opts.compression },
    headers: { 'X-Registry-Auth': registryAuth(cli, r.domain) },
  });
  if (opts.quiet) {
    try {
      for await (const m of cli.client.jsonStream(res))
        if (m.error || m.errorDetail) throw new StreamError(m.errorDetail?.message || m.error);
    } catch (err) {
      if (err instanceof StreamError) throw new StatusError(1, err.message);
      throw err;
    }
    cli.out(`${fullName(r)}${r.tag ? `:${r.tag}` : ''}\n`);
    return;
  }
  await renderStream(cli, res);
}
