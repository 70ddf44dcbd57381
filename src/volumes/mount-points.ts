/** A container's mount plan as inspect shows it (`Mounts`), and back. */
import type { MountPoint } from '../model/container.js';
import type { PlannedMount } from './specs.js';

/** `Mounts` for a plan; `sourceOf` gives a volume's host path (empty while it is unknown). */
export function mountPoints(mounts: PlannedMount[], sourceOf: (m: PlannedMount) => string): MountPoint[] {
  const out: MountPoint[] = [];
  for (const m of mounts) {
    if (m.type === 'tmpfs') {
      if (m.origin === 'tmpfs') continue;
      out.push({
        Type: 'tmpfs',
        Source: '',
        Destination: m.destination,
        Mode: m.mode,
        RW: m.rw,
        Propagation: '',
      });
    } else if (m.type === 'bind') {
      out.push({
        Type: 'bind',
        Source: m.source,
        Destination: m.destination,
        Mode: m.mode,
        RW: m.rw,
        Propagation: m.propagation,
      });
    } else {
      const src = sourceOf(m);
      out.push({
        Type: 'volume',
        Name: m.source,
        Source: src,
        Destination: m.destination,
        Driver: m.driver || 'local',
        Mode: m.mode,
        RW: m.rw,
        Propagation: m.propagation,
      });
    }
  }
  return out;
}

/** The plan of a container prepared before this service knew it, rebuilt from its `Mounts`. */
export function plannedFromMounts(points: MountPoint[]): PlannedMount[] {
  return points.map((mp) => ({
    type: mp.Type,
    source: mp.Type === 'volume' ? (mp.Name ?? '') : mp.Source,
    destination: mp.Destination,
    rw: mp.RW,
    mode: mp.Mode,
    propagation: mp.Propagation,
    driver: mp.Driver ?? '',
    copyData: false,
    origin: 'volumes-from' as const,
  }));
}
