/**
 * json-file's `attrs`: the container labels and environment variables named by the `labels`,
 * `labels-regex`, `env`, `env-regex` options and the `tag` option, as dockerd adds them to every
 * line (`"attrs":{…}` between `stream` and `time`, keys sorted, escaped as Go's encoding/json).
 * `tag` takes the Go template fields dockerd offers ({{.ID}}, {{.FullID}}, {{.Name}},
 * {{.ImageID}}, {{.ImageFullID}}, {{.ImageName}}, {{.DaemonName}}, {{.Command}}); other template
 * syntax is kept as written.
 */
import { invalid } from '../../util/errors.js';

export interface AttrSource {
  Id: string;
  Name?: string;
  Image?: string;
  ImageName?: string;
  Path?: string;
  Args?: string[];
  Config?: { Labels?: Record<string, string> | null; Env?: string[] | null };
}

/** The `attrs` object's JSON, or undefined when the options name none. */
export function attrsJson(opts: Record<string, string>, c: AttrSource): string | undefined {
  const out: Record<string, string> = {};
  const labels = c.Config?.Labels ?? {};
  const env = new Map<string, string>();
  for (const e of c.Config?.Env ?? []) {
    const eq = e.indexOf('=');
    if (eq > 0) env.set(e.slice(0, eq), e.slice(eq + 1));
  }
  for (const l of (opts.labels ?? '').split(',')) if (l && l in labels) out[l] = labels[l];
  if (opts['labels-regex']) {
    const re = regex(opts['labels-regex']);
    for (const [k, v] of Object.entries(labels)) if (re.test(k)) out[k] = v;
  }
  for (const k of (opts.env ?? '').split(',')) if (k && env.has(k)) out[k] = env.get(k)!;
  if (opts['env-regex']) {
    const re = regex(opts['env-regex']);
    for (const [k, v] of env) if (re.test(k)) out[k] = v;
  }
  if (opts.tag) out.tag = expandTag(opts.tag, c);
  const keys = Object.keys(out).sort();
  if (keys.length === 0) return undefined;
  return `{${keys.map((k) => `${goJson(k)}:${goJson(out[k])}`).join(',')}}`;
}

/** Checks the regular expressions at create (dockerd fails then too). */
export function validateAttrs(opts: Record<string, string>): void {
  if (opts['labels-regex']) regex(opts['labels-regex']);
  if (opts['env-regex']) regex(opts['env-regex']);
}

function regex(src: string): RegExp {
  try {
    return new RegExp(src);
  } catch {
    throw invalid(`error parsing regexp: ${src}`);
  }
}

function expandTag(tpl: string, c: AttrSource): string {
  const image = c.Image?.replace(/^sha256:/, '') ?? '';
  const fields: Record<string, string> = {
    ID: c.Id.slice(0, 12),
    FullID: c.Id,
    Name: (c.Name ?? '').replace(/^\//, ''),
    ImageID: image.slice(0, 12),
    ImageFullID: image,
    ImageName: c.ImageName ?? '',
    DaemonName: 'docker',
    Command: [c.Path ?? '', ...(c.Args ?? [])].join(' ').trim(),
  };
  return tpl.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (m, f: string) => fields[f] ?? m);
}

/** JSON string as Go's encoding/json writes it: `<`, `>`, `&`, U+2028/9 escaped too. */
function goJson(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
