/** Pulling and pushing with progress, and the X-Registry-Auth header from the CLI's config.json. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Cli } from '../cli.js';
import { ProgressRenderer } from '../progress.js';
import { familiarString, fullName, type ImageRef, parseRef } from '../reference.js';

export const INDEX_SERVER = 'https://index.docker.io/v1/';

export function readConfig(cli: Cli): Record<string, any> {
  try {
    return JSON.parse(readFileSync(path.join(cli.configDir, 'config.json'), 'utf8')) as Record<string, any>;
  } catch {
    return {};
  }
}

/** base64url JSON of the credentials stored for a registry, `e30=` (`{}`) when none. */
export function registryAuth(cli: Cli, domain: string): string {
  const key = domain === 'docker.io' ? INDEX_SERVER : domain;
  const auths = (readConfig(cli).auths ?? {}) as Record<string, { auth?: string; identitytoken?: string }>;
  const entry = auths[key] ?? auths[`https://${key}`] ?? auths[`http://${key}`];
  let cfg: Record<string, string> = {};
  if (entry?.auth) {
    const dec = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    cfg = { username: dec.slice(0, i), password: dec.slice(i + 1), serveraddress: key };
  }
  if (entry?.identitytoken) cfg = { ...cfg, identitytoken: entry.identitytoken, serveraddress: key };
  return Buffer.from(JSON.stringify(cfg)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** `POST /images/create?fromImage=…&tag=…`, rendering progress on `out`. */
export async function pullImage(
  cli: Cli,
  ref: ImageRef,
  out: NodeJS.WriteStream,
  opts: { platform?: string; quiet?: boolean; allTags?: boolean } = {},
): Promise<void> {
  const res = await cli.client.request('POST', '/images/create', {
    query: {
      fromImage: fullName(ref),
      tag: opts.allTags ? undefined : (ref.digest ?? ref.tag ?? 'latest'),
      platform: opts.platform,
    },
    headers: { 'X-Registry-Auth': registryAuth(cli, ref.domain) },
  });
  const r = new ProgressRenderer(out);
  for await (const m of cli.client.jsonStream(res)) {
    if (opts.quiet) {
      if (m.error || m.errorDetail) r.write(m);
      continue;
    }
    r.write(m);
  }
}

export { familiarString, parseRef };
