/**
 * Checks a parsed JSON body against the Go types the Engine API declares, with the rules of Go's
 * encoding/json as dockerd applies them: `null` leaves a field at its zero value, unknown fields
 * are ignored, field names match case-insensitively, numbers must fit the integer type. A
 * mismatch is refused before anything is stored, worded as dockerd words it
 * (`invalid JSON: json: cannot unmarshal number into Go struct field CreateRequest.Labels of type
 * string`), so a bad value can never reach a record and break listing later.
 */
import { invalid } from '../../util/errors.js';

export type GoType =
  | { kind: 'string' | 'bool' | 'any' | 'strslice' }
  | { kind: 'int'; name: string; min: number; max: number }
  | { kind: 'float' }
  | { kind: 'slice'; of: GoType }
  | { kind: 'array'; of: GoType; length: number }
  | { kind: 'map'; of: GoType }
  | { kind: 'struct'; name: string; fields: Record<string, GoType> };

export const str: GoType = { kind: 'string' };
export const bool: GoType = { kind: 'bool' };
export const any: GoType = { kind: 'any' };
export const float: GoType = { kind: 'float' };
export const int64: GoType = {
  kind: 'int',
  name: 'int64',
  min: Number.MIN_SAFE_INTEGER,
  max: Number.MAX_SAFE_INTEGER,
};
export const int: GoType = { ...int64, name: 'int' } as GoType;
export const uint16: GoType = { kind: 'int', name: 'uint16', min: 0, max: 0xffff };
export const uint32: GoType = { kind: 'int', name: 'uint32', min: 0, max: 0xffffffff };
export const uint64: GoType = { kind: 'int', name: 'uint64', min: 0, max: Number.MAX_SAFE_INTEGER };
export const int32: GoType = { kind: 'int', name: 'int32', min: -0x80000000, max: 0x7fffffff };
export const slice = (of: GoType): GoType => ({ kind: 'slice', of });
export const array = (of: GoType, length: number): GoType => ({ kind: 'array', of, length });
export const map = (of: GoType): GoType => ({ kind: 'map', of });
export const struct = (name: string, fields: Record<string, GoType>): GoType => ({
  kind: 'struct',
  name,
  fields,
});
/** Docker's `StrSlice` (Cmd, Entrypoint…): one string or a list of strings. */
export const strslice: GoType = { kind: 'strslice' };
/** A set such as `ExposedPorts` (`map[string]struct{}`): any object per key. */
export const set: GoType = map(struct('struct {}', {}));

function goTypeName(t: GoType): string {
  switch (t.kind) {
    case 'int':
      return t.name;
    case 'float':
      return 'float64';
    case 'any':
      return 'interface {}';
    case 'slice':
      return `[]${goTypeName(t.of)}`;
    case 'array':
      return `[${t.length}]${goTypeName(t.of)}`;
    case 'map':
      return `map[string]${goTypeName(t.of)}`;
    case 'struct':
      return t.name;
    case 'strslice':
      return 'strslice.StrSlice';
    default:
      return t.kind;
  }
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  if (typeof v === 'boolean') return 'bool';
  return typeof v; // string, number
}

/** Where a value sits, as Go reports it: the innermost struct type and the field path. */
interface Where {
  struct?: string;
  path: string[];
  /** Hand the value on as Go would (decodeGoJson), or only check it (checkGoJson). */
  fix: boolean;
}

function mismatch(what: string, t: GoType, at: Where, top: GoType): Error {
  const into = at.struct ? `Go struct field ${at.struct}.${at.path.join('.')}` : `Go value`;
  const typeName = at.struct ? goTypeName(t) : goTypeName(top);
  return invalid(`invalid JSON: json: cannot unmarshal ${what} into ${into} of type ${typeName}`);
}

/** Checks `v` against `t`; returns it as Go would hand it on (see decodeGoJson). */
function check(v: unknown, t: GoType, at: Where, top: GoType): unknown {
  if (v === null || t.kind === 'any') return v;
  switch (t.kind) {
    case 'string':
    case 'bool':
      if (jsonKind(v) !== t.kind) throw mismatch(jsonKind(v), t, at, top);
      return v;
    case 'strslice':
      if (typeof v === 'string') return at.fix ? [v] : v;
      if (!Array.isArray(v)) throw mismatch(jsonKind(v), t, at, top);
      for (const e of v) if (typeof e !== 'string') throw mismatch(jsonKind(e), str, at, top);
      return v;
    case 'float':
      if (typeof v !== 'number') throw mismatch(jsonKind(v), t, at, top);
      return v;
    case 'int':
      if (typeof v !== 'number') throw mismatch(jsonKind(v), t, at, top);
      if (!Number.isInteger(v) || v < t.min || v > t.max) throw mismatch(`number ${v}`, t, at, top);
      return v;
    case 'slice':
    case 'array': {
      if (!Array.isArray(v)) throw mismatch(jsonKind(v), t, at, top);
      const list = v as unknown[];
      for (let i = 0; i < list.length; i++) {
        const e = check(list[i], t.of, at, top);
        if (at.fix) list[i] = e;
      }
      return list;
    }
    case 'map': {
      if (jsonKind(v) !== 'object') throw mismatch(jsonKind(v), t, at, top);
      const obj = v as Record<string, unknown>;
      for (const k of Object.keys(obj)) {
        const e = check(obj[k], t.of, at, top);
        if (at.fix) obj[k] = e;
      }
      return obj;
    }
    case 'struct': {
      if (jsonKind(v) !== 'object') throw mismatch(jsonKind(v), t, at, top);
      const obj = v as Record<string, unknown>;
      const lower = new Map(Object.keys(t.fields).map((k) => [k.toLowerCase(), k]));
      for (const key of Object.keys(obj)) {
        const field = key in t.fields ? key : lower.get(key.toLowerCase());
        if (!field) continue;
        const value = check(
          obj[key],
          t.fields[field],
          { ...at, struct: t.name, path: [...at.path, field] },
          top,
        );
        if (!at.fix) continue;
        // Go matches field names case-insensitively; the services read the canonical name.
        if (field !== key) {
          delete obj[key];
          if (!(field in obj)) obj[field] = value;
        } else obj[key] = value;
      }
      return obj;
    }
  }
}

/**
 * Checks a parsed body against `type` and returns it as dockerd's decoder would see it: field
 * names in their canonical case, a lone string where a `StrSlice` is declared (Cmd, Entrypoint,
 * CapAdd…) made a one-element list. The value is changed in place. Throws a 400 on a mismatch.
 */
export function decodeGoJson<T>(value: unknown, type: GoType): T {
  return check(value, type, { path: [], fix: true }, type) as T;
}

/** Throws a 400 (invalid) when `value` would not decode into `type`. */
export function checkGoJson(value: unknown, type: GoType): void {
  check(value, type, { path: [], fix: false }, type);
}
