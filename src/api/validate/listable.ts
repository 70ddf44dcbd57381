/**
 * Lists must survive a bad record: one written by an older berthd before bodies were checked,
 * edited by hand, or half-written by a full disk. A record whose shape a client could not decode
 * (a number where the API promises a string would make the docker CLI refuse the whole list) is
 * left out of lists and logged once; it stays on disk for `rm`/`inspect` and for a person to look at.
 */
import { log } from '../../util/log.js';
import { any, bool, checkGoJson, type GoType, int, int64, map, slice, str, struct } from './go-json.js';

const labels = map(str);
const strings = slice(str);

/** What `GET /containers/json` reads from a record. */
export const listedContainer = struct('Container', {
  Id: str,
  Name: str,
  Created: str,
  Image: str,
  ImageName: str,
  Path: str,
  Args: strings,
  Config: struct('Config', { Labels: labels, Image: str }),
  HostConfig: struct('HostConfig', { NetworkMode: str }),
  State: struct('State', { Status: str, Running: bool, ExitCode: int, StartedAt: str, FinishedAt: str }),
  NetworkSettings: struct('NetworkSettings', {
    Ports: map(slice(struct('PortBinding', { HostIp: str, HostPort: str }))),
    Networks: map(any),
  }),
  Mounts: slice(struct('MountPoint', { Name: str, Source: str, Destination: str, Type: str, RW: bool })),
});

/** What `GET /networks` answers per network. */
export const listedNetwork = struct('Network', {
  Name: str,
  Id: str,
  Created: str,
  Scope: str,
  Driver: str,
  EnableIPv6: bool,
  Internal: bool,
  Labels: labels,
  Options: labels,
});

/** What `GET /volumes` answers per volume. */
export const listedVolume = struct('Volume', {
  Name: str,
  Driver: str,
  Mountpoint: str,
  CreatedAt: str,
  Labels: labels,
  Options: labels,
  Scope: str,
  UsageData: struct('UsageData', { Size: int64, RefCount: int64 }),
});

const reported = new Set<string>();

function fits(item: unknown, type: GoType): string | undefined {
  if (typeof item !== 'object' || item === null) return 'not an object';
  try {
    checkGoJson(item, type);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The items a client can decode; the others logged (once each) and skipped. */
export function listable<T>(what: string, items: T[], type: GoType, idOf: (item: T) => unknown): T[] {
  return items.filter((item) => {
    const problem = fits(item, type);
    if (!problem) return true;
    const id = `${what}:${String(idOf(item))}`;
    if (!reported.has(id)) {
      reported.add(id);
      log.warn(`${what} record skipped in lists: it does not have the API's shape`, { id, err: problem });
    }
    return false;
  });
}
