/**
 * What `docker top` and `docker stats` show of a running container: its processes (the host's `ps`
 * filtered by the container's cgroup) and samples of its cgroup counters (cgroup v1 here).
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import type { ContainerRecord } from '../model/container.js';
import { invalid } from '../util/errors.js';
import { run } from '../util/exec.js';

/** Whether the memory cgroup's OOM killer killed a process of the container (read before the runtime removes the cgroup). */
export async function oomKilled(cgroupParent: string, id: string): Promise<boolean> {
  try {
    return /oom_kill [1-9]/.test(await fs.readFile(`/sys/fs/cgroup/memory/${cgroupParent}/${id}/memory.oom_control`, 'utf8'));
  } catch {
    return false;
  }
}

/** Host PIDs of the container's processes, from its cgroup (its init's PID when that is gone). */
export async function cgroupPids(cgroupParent: string, id: string, initPid: number): Promise<number[]> {
  try {
    return (await fs.readFile(`/sys/fs/cgroup/pids/${cgroupParent}/${id}/cgroup.procs`, 'utf8')).split('\n').filter(Boolean).map(Number);
  } catch {
    return initPid ? [initPid] : [];
  }
}

/** The CPU figures a sample is measured against. */
export interface StatsBase {
  cpu: number;
  system: number;
  read: string;
}

/** `ps` with the caller's arguments, keeping the rows of the given PIDs (Docker's `top`). */
export async function processTable(pids: Set<number>, psArgs: string[]): Promise<{ Titles: string[]; Processes: string[][] }> {
  const out = await run('ps', psArgs).catch((err) => {
    throw invalid(`Error running ps: ${(err as Error).message}`);
  });
  const lines = out.stdout.split('\n').filter(Boolean);
  const titles = lines[0].trim().split(/\s+/);
  const pidCol = titles.indexOf('PID');
  if (pidCol < 0) throw invalid(`Couldn't find PID field in ps output`);
  const procs: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (!pids.has(Number(fields[pidCol]))) continue;
    procs.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')]);
  }
  return { Titles: titles, Processes: procs };
}

async function readNum(file: string): Promise<number> {
  try {
    return Number((await fs.readFile(file, 'utf8')).trim()) || 0;
  } catch {
    return 0;
  }
}

/** One stats sample (`GET …/stats`) from the container's cgroups; `pre` is the previous sample's CPU figures. */
export async function sampleStats(c: ContainerRecord, parent: string, pre: StatsBase) {
  const cg = (ctrl: string, file: string) => `/sys/fs/cgroup/${ctrl}/${parent}/${c.Id}/${file}`;
  const running = c.State.Running;
  const cpu = running ? await readNum(cg('cpuacct', 'cpuacct.usage')) : 0;
  const stat = await fs.readFile('/proc/stat', 'utf8');
  const fields = stat.split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const system = (fields.reduce((a, b) => a + b, 0) * 1e9) / 100;
  const usage = running ? await readNum(cg('memory', 'memory.usage_in_bytes')) : 0;
  const limit = running ? await readNum(cg('memory', 'memory.limit_in_bytes')) : 0;
  let inactiveFile = 0;
  try {
    const m = /^total_inactive_file (\d+)/m.exec(await fs.readFile(cg('memory', 'memory.stat'), 'utf8'));
    inactiveFile = m ? Number(m[1]) : 0;
  } catch {}
  const ncpu = os.cpus().length;
  const now = new Date().toISOString();
  return {
    read: now,
    preread: pre.read,
    name: c.Name,
    id: c.Id,
    pids_stats: { current: running ? await readNum(cg('pids', 'pids.current')) : 0, limit: c.HostConfig.PidsLimit || 0 },
    blkio_stats: { io_service_bytes_recursive: null, io_serviced_recursive: null },
    num_procs: 0,
    cpu_stats: { cpu_usage: { total_usage: cpu, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: system, online_cpus: ncpu, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    precpu_stats: { cpu_usage: { total_usage: pre.cpu, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: pre.system, online_cpus: ncpu, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    memory_stats: running ? { usage, limit: Math.min(limit, os.totalmem()), stats: { total_inactive_file: inactiveFile, inactive_file: inactiveFile } } : {},
    networks: {},
  };
}

