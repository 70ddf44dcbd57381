/**
 * A small router for Docker's paths. `{name}` matches one segment; `{name:.*}` matches greedily
 * across slashes, because image names carry `/` and `:` inside the path
 * (`/images/127.0.0.1:5000/team/app/push`).
 */
import { invalid } from '../util/errors.js';
import type { Handler } from './context.js';

/** A `%zz` in a path is the client's error (400, as Go's URL parser says it), not ours. */
function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalid(`invalid URL escape "${/%(?![0-9a-fA-F]{2}).{0,2}/.exec(raw)?.[0] ?? raw}"`);
  }
}

interface Route {
  method: string;
  regex: RegExp;
  keys: string[];
  handler: Handler;
}

export class Router {
  private routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    const keys: string[] = [];
    const source = pattern.replace(/\{(\w+)(:\.\*)?\}/g, (_m, key: string, greedy?: string) => {
      keys.push(key);
      return greedy ? '(.+)' : '([^/]+)';
    });
    this.routes.push({ method, regex: new RegExp(`^${source}$`), keys, handler });
    return this;
  }

  get = (p: string, h: Handler) => this.add('GET', p, h);
  post = (p: string, h: Handler) => this.add('POST', p, h);
  put = (p: string, h: Handler) => this.add('PUT', p, h);
  delete = (p: string, h: Handler) => this.add('DELETE', p, h);
  head = (p: string, h: Handler) => this.add('HEAD', p, h);

  /** Returns the handler and decoded params, or whether the path exists under another method. */
  match(method: string, pathname: string): { handler: Handler; params: Record<string, string> } | { allowed: boolean } {
    let pathExists = false;
    for (const r of this.routes) {
      const m = r.regex.exec(pathname);
      if (!m) continue;
      pathExists = true;
      if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) continue;
      const params: Record<string, string> = {};
      r.keys.forEach((k, i) => {
        params[k] = decodeParam(m[i + 1]);
      });
      return { handler: r.handler, params };
    }
    return { allowed: pathExists };
  }
}
