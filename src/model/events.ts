/** The daemon's event bus: what `GET /events` streams (`docker events`). */
import { EventEmitter } from 'node:events';

export interface EngineEvent {
  Type: 'container' | 'image' | 'network' | 'volume' | 'daemon' | 'plugin' | 'builder';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
}

export class EventBus extends EventEmitter {
  private readonly recent: EngineEvent[] = [];

  publish(type: EngineEvent['Type'], action: string, id: string, attributes: Record<string, string> = {}): void {
    const now = process.hrtime.bigint();
    const wall = BigInt(Date.now()) * 1_000_000n + (now % 1_000_000n);
    const ev: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(wall / 1_000_000_000n),
      timeNano: Number(wall),
    };
    this.recent.push(ev);
    if (this.recent.length > 1000) this.recent.shift();
    this.emit('event', ev);
  }

  /** Events kept in memory, for `--since`. */
  history(): readonly EngineEvent[] {
    return this.recent;
  }
}
