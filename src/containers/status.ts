/** The human `Status` column of `docker ps`, computed as Docker words it. */
import type { ContainerRecord } from '../model/container.js';

export function humanDuration(rawSeconds: number): string {
  const seconds = Math.floor(rawSeconds);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${Math.floor(seconds)} seconds`;
  const minutes = Math.round(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(seconds / 3600);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

const since = (iso: string) => Math.max(0, (Date.now() - Date.parse(iso)) / 1000);

export function statusText(c: ContainerRecord): string {
  const s = c.State;
  switch (s.Status) {
    case 'running': {
      const health = s.Health && s.Health.Status !== 'none' ? ` (${s.Health.Status === 'starting' ? 'health: starting' : s.Health.Status})` : '';
      return `Up ${humanDuration(since(s.StartedAt))}${health}`;
    }
    case 'paused':
      return `Up ${humanDuration(since(s.StartedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${s.ExitCode}) ${humanDuration(since(s.FinishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'exited':
      return s.FinishedAt.startsWith('0001') ? 'Created' : `Exited (${s.ExitCode}) ${humanDuration(since(s.FinishedAt))} ago`;
    default:
      return 'Created';
  }
}
