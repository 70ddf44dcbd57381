/**
 * `--change` instructions for `docker import` and `docker commit` (Dockerfile syntax, one
 * instruction each): CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
 * WORKDIR, SHELL, HEALTHCHECK (NONE or CMD form with options). Applied onto an image config.
 */
import { invalid } from '../util/errors.js';
import type { ImageConfig } from './index.js';

export type RunConfig = ImageConfig['config'];

const ALLOWED = [
  'CMD',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'HEALTHCHECK',
  'LABEL',
  'ONBUILD',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
];

/** Splits shell words as Dockerfile does for ENV/LABEL: quotes and backslash escapes. */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw invalid(`unterminated quote in: ${s}`);
  if (inWord) out.push(cur);
  return out;
}

/** `["a","b"]` (exec form) or a shell-form string wrapped in the shell. */
function cmdForm(args: string, shell: string[]): string[] {
  const t = args.trim();
  if (t.startsWith('[')) {
    try {
      const v = JSON.parse(t) as unknown;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
    } catch {
      // not JSON: shell form, as Docker does
    }
  }
  return [...shell, t];
}

/** `K=V K2="v 2"` or the legacy `K V…` form. */
function keyValues(instr: string, args: string): [string, string][] {
  const words = splitWords(args);
  if (words.length === 0) throw invalid(`${instr} requires at least one argument`);
  if (!words[0].includes('=')) {
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(args);
    if (!m) throw invalid(`${instr} requires at least two arguments`);
    return [[m[1], splitWords(m[2]).join(' ') || m[2].trim()]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw invalid(`${instr} names can not be blank`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

const durationNs = (s: string): number => {
  const m = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(s);
  if (!m) throw invalid(`time: invalid duration "${s}"`);
  const mult = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2] as 'ns'];
  return Math.round(Number(m[1]) * mult);
};

export function applyChange(cfg: RunConfig, change: string): void {
  const line = change.trim();
  if (line === '') return;
  const m = /^(\S+)\s*([\s\S]*)$/.exec(line)!;
  const instr = m[1].toUpperCase();
  const args = m[2];
  if (!ALLOWED.includes(instr)) {
    if (/^[A-Za-z]+$/.test(m[1]) && ['ADD', 'ARG', 'COPY', 'FROM', 'MAINTAINER', 'RUN'].includes(instr)) {
      throw invalid(`${instr.toLowerCase()} is not a valid change command`);
    }
    throw invalid(`dockerfile parse error line 1: unknown instruction: ${m[1]}`);
  }
  const shell = cfg.Shell?.length ? cfg.Shell : ['/bin/sh', '-c'];
  switch (instr) {
    case 'CMD':
      cfg.Cmd = cmdForm(args, shell);
      break;
    case 'ENTRYPOINT':
      cfg.Entrypoint = args.trim() === '' ? null : cmdForm(args, shell);
      break;
    case 'ENV': {
      const env = [...(cfg.Env ?? [])];
      for (const [k, v] of keyValues('ENV', args)) {
        const i = env.findIndex((e) => e.split('=')[0] === k);
        if (i === -1) env.push(`${k}=${v}`);
        else env[i] = `${k}=${v}`;
      }
      cfg.Env = env;
      break;
    }
    case 'LABEL': {
      const labels = { ...(cfg.Labels ?? {}) };
      for (const [k, v] of keyValues('LABEL', args)) labels[k] = v;
      cfg.Labels = labels;
      break;
    }
    case 'EXPOSE': {
      const ports = { ...(cfg.ExposedPorts ?? {}) };
      for (const p of splitWords(args)) {
        if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw invalid(`invalid containerPort: ${p}`);
        ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
      }
      cfg.ExposedPorts = ports;
      break;
    }
    case 'VOLUME': {
      const vols = { ...(cfg.Volumes ?? {}) };
      const t = args.trim();
      let list: string[];
      try {
        list = t.startsWith('[') ? (JSON.parse(t) as string[]) : splitWords(t);
      } catch {
        list = splitWords(t);
      }
      if (list.length === 0) throw invalid('VOLUME requires at least one argument');
      for (const v of list) vols[v] = {};
      cfg.Volumes = vols;
      break;
    }
    case 'USER':
      cfg.User = args.trim();
      break;
    case 'WORKDIR': {
      const w = args.trim();
      cfg.WorkingDir = w.startsWith('/')
        ? w
        : `${cfg.WorkingDir || '/'}${(cfg.WorkingDir || '/').endsWith('/') ? '' : '/'}${w}`;
      break;
    }
    case 'STOPSIGNAL':
      cfg.StopSignal = args.trim();
      break;
    case 'ONBUILD':
      cfg.OnBuild = [...(cfg.OnBuild ?? []), args.trim()];
      break;
    case 'SHELL': {
      const v = cmdForm(args, []);
      if (!args.trim().startsWith('[') || v.length === 0)
        throw invalid('SHELL requires the arguments to be in JSON form');
      cfg.Shell = v;
      break;
    }
    case 'HEALTHCHECK': {
      const words = args.trim();
      if (/^none$/i.test(words)) {
        cfg.Healthcheck = { Test: ['NONE'] };
        break;
      }
      const hc: Record<string, unknown> = {};
      let rest = words;
      for (;;) {
        const o = /^--(interval|timeout|start-period|start-interval|retries)=(\S+)\s*/.exec(rest);
        if (!o) break;
        rest = rest.slice(o[0].length);
        if (o[1] === 'retries') hc.Retries = Number(o[2]);
        else
          hc[
            {
              interval: 'Interval',
              timeout: 'Timeout',
              'start-period': 'StartPeriod',
              'start-interval': 'StartInterval',
            }[o[1]]!
          ] = durationNs(o[2]);
      }
      const c = /^CMD\s+([\s\S]+)$/i.exec(rest);
      if (!c) throw invalid('Unknown type in HEALTHCHECK (try CMD)');
      const cmd = cmdForm(c[1], []);
      hc.Test = c[1].trim().startsWith('[') && cmd.length ? ['CMD', ...cmd] : ['CMD-SHELL', c[1].trim()];
      cfg.Healthcheck = hc;
      break;
    }
  }
}

export function applyChanges(cfg: RunConfig, changes: string[]): RunConfig {
  const out: RunConfig = JSON.parse(JSON.stringify(cfg));
  for (const c of changes) applyChange(out, c);
  return out;
}
