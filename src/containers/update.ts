/** `docker update`: which fields change, Docker's refusals, and the limits a running container's cgroup gets. */
import type { HostConfig } from '../model/container.js';
import type { ResourceUpdate } from '../runtime/index.js';
import { invalid } from '../util/errors.js';

const UPDATABLE = ['Memory', 'MemorySwap', 'NanoCpus', 'CpuShares', 'CpuQuota', 'CpuPeriod', 'PidsLimit', 'RestartPolicy'];

/** The new HostConfig and, when a limit changed, the resources to apply (absent: only the restart policy changed). */
export function planUpdate(current: HostConfig, body: Record<string, unknown>): { hostConfig: HostConfig; resources?: ResourceUpdate } {
  const changed = Object.entries(body).filter(
    ([k, v]) => UPDATABLE.includes(k) && v !== undefined && v !== null && v !== 0 && !(k === 'RestartPolicy' && !(v as { Name?: string }).Name),
  );
  const h: HostConfig = { ...current };
  for (const [k, v] of changed) (h as Record<string, unknown>)[k] = v;
  if (h.Memory !== undefined && h.Memory !== 0 && h.Memory < 6 * 1024 * 1024) throw invalid('Minimum memory limit allowed is 6MB');
  if (h.Memory && h.MemorySwap && h.MemorySwap > 0 && h.MemorySwap < h.Memory)
    throw invalid('Minimum memoryswap limit should be larger than memory limit, see usage');
  if (!changed.some(([k]) => k !== 'RestartPolicy')) return { hostConfig: h };
  const cpu = h.NanoCpus ? { cpuPeriod: 100_000, cpuQuota: Math.round((h.NanoCpus * 100_000) / 1e9) } : { cpuPeriod: h.CpuPeriod, cpuQuota: h.CpuQuota };
  return { hostConfig: h, resources: { memory: h.Memory, memorySwap: h.MemorySwap, cpuShares: h.CpuShares, pidsLimit: h.PidsLimit ?? undefined, ...cpu } };
}
