/** docker's formatter.Context: `table …`, `json`, custom Go templates over a list of rows. */
import { tabwrite } from './tabwriter.js';
import { ESCAPE_HTML, HEADER_FUNCS, Template, TemplateError } from './template.js';

export function isTable(format: string): boolean {
  return format.startsWith('table');
}

/** preFormat: strip `table`, map `json`, trim spaces, turn literal `\t` and `\n` into the characters. */
export function finalFormat(format: string): string {
  let f = format;
  if (isTable(f)) f = f.slice('table'.length);
  else if (f === 'json') f = '{{json .}}';
  f = f.replace(/^ +| +$/g, '');
  return f.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

export function parseTemplate(format: string): Template {
  try {
    return new Template(format);
  } catch (err) {
    if (err instanceof TemplateError) throw new TemplateError(`template parsing error: ${err.message}`);
    throw err;
  }
}

/** Renders rows with a format; tables get the header row and tabwriter(10, 1, 3). */
export function renderRows(format: string, rows: object[], header: Record<string, unknown>): string {
  const tmpl = parseTemplate(finalFormat(format));
  let body = '';
  for (const r of rows) {
    try {
      body += tmpl.execute(r) + '\n';
    } catch (err) {
      throw new TemplateError(`template parsing error: ${(err as Error).message}`);
    }
  }
  if (!isTable(format)) return body;
  let head = '';
  try {
    head = tmpl.execute(header, HEADER_FUNCS);
  } catch {
    head = '';
  }
  return tabwrite(head + '\n' + body, 10, 3);
}

/** A row object: fields in sorted order (as Go marshals a map), `{{json .}}` escapes HTML as docker's does. */
export function row<T extends object>(fields: T): T {
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(fields).sort()) sorted[k] = (fields as Record<string, unknown>)[k];
  Object.defineProperty(sorted, ESCAPE_HTML, { value: true, enumerable: false });
  return sorted as T;
}
