/** A small leveled logger writing logfmt-ish lines to stderr (the daemon's log). */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let threshold: Level = 'info';

// A log pipe whose reader went away (EPIPE) would turn every later line into an uncaught error,
// which is itself logged: the daemon would spin. Once stderr fails, logging stops instead.
let sinkBroken = false;
process.stderr.on('error', () => {
  sinkBroken = true;
});

export function setLogLevel(level: string): void {
  if (level in ORDER) threshold = level as Level;
  else if (level === 'fatal') threshold = 'error';
}

function emit(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (sinkBroken || ORDER[level] < ORDER[threshold]) return;
  const extra = fields
    ? Object.entries(fields)
        .map(([k, v]) => ` ${k}=${JSON.stringify(v instanceof Error ? v.message : v)}`)
        .join('')
    : '';
  process.stderr.write(`time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}${extra}\n`);
}

export const log = {
  debug: (m: string, f?: Record<string, unknown>) => emit('debug', m, f),
  info: (m: string, f?: Record<string, unknown>) => emit('info', m, f),
  warn: (m: string, f?: Record<string, unknown>) => emit('warn', m, f),
  error: (m: string, f?: Record<string, unknown>) => emit('error', m, f),
};
