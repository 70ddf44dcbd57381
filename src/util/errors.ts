/**
 * Errors are values with a kind; the API layer derives the HTTP status from the kind in one place
 * (see statusOf). Messages are worded as Docker words them, since clients grep them.
 */
export type ErrorKind =
  | 'invalid' // 400
  | 'unauthorized' // 401
  | 'forbidden' // 403
  | 'not-found' // 404
  | 'conflict' // 409
  | 'not-modified' // 304
  | 'not-implemented' // 501
  | 'unavailable' // 503
  | 'system'; // 500

export class BerthError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'BerthError';
  }
}

export const invalid = (msg: string) => new BerthError('invalid', msg);
export const notFound = (msg: string) => new BerthError('not-found', msg);
export const conflict = (msg: string) => new BerthError('conflict', msg);
export const forbidden = (msg: string) => new BerthError('forbidden', msg);
export const unauthorized = (msg: string) => new BerthError('unauthorized', msg);
export const notModified = () => new BerthError('not-modified', '');
export const notImplemented = (msg: string) => new BerthError('not-implemented', msg);
export const unavailable = (msg: string) => new BerthError('unavailable', msg);
export const systemError = (msg: string, cause?: unknown) => new BerthError('system', msg, cause);

const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'not-modified': 304,
  'not-implemented': 501,
  unavailable: 503,
  system: 500,
};

export function statusOf(err: unknown): number {
  return err instanceof BerthError ? STATUS[err.kind] : 500;
}

export function isKind(err: unknown, kind: ErrorKind): boolean {
  return err instanceof BerthError && err.kind === kind;
}

/** Node's fs errors carry a code; this narrows them without `any`. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
