/**
 * Stages that do not depend on each other are built at the same time, but the classic builder's
 * output is one sequence of `Step n/m` lines. Each stage writes to its own lane; the lane of the
 * earliest unfinished stage goes straight through, later lanes are held back and written, in
 * stage order, as the stages before them finish.
 */
import type { BuildOutput } from './index.js';

type Message = { kind: 'stream'; text: string } | { kind: 'aux' | 'send'; value: Record<string, unknown> };

export class OrderedOutput {
  private readonly queues: Message[][];
  private readonly finished: boolean[];
  private head = 0;

  constructor(
    private readonly out: BuildOutput,
    count: number,
  ) {
    this.queues = Array.from({ length: count }, () => []);
    this.finished = Array.from({ length: count }, () => false);
  }

  private write(m: Message): void {
    if (m.kind === 'stream') this.out.stream(m.text);
    else if (m.kind === 'aux') this.out.aux(m.value);
    else this.out.send(m.value);
  }

  private put(lane: number, m: Message): void {
    if (lane === this.head) this.write(m);
    else this.queues[lane].push(m);
  }

  lane(i: number): BuildOutput {
    return {
      stream: (text) => this.put(i, { kind: 'stream', text }),
      aux: (value) => this.put(i, { kind: 'aux', value }),
      send: (value) => this.put(i, { kind: 'send', value }),
    };
  }

  /** Lane `i` is complete: the next lanes' held output follows, up to the next unfinished one. */
  finish(i: number): void {
    this.finished[i] = true;
    while (this.head < this.finished.length && this.finished[this.head]) {
      this.head++;
      if (this.head < this.queues.length) this.drain(this.head);
    }
  }

  /** After a failure: whatever is held, in stage order. */
  flushAll(): void {
    for (let i = this.head; i < this.queues.length; i++) this.drain(i);
  }

  private drain(i: number): void {
    const q = this.queues[i];
    this.queues[i] = [];
    for (const m of q) this.write(m);
  }
}
