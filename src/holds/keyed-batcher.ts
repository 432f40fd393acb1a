// Coalesces concurrent work for the same key (an event) into batches, one batch in flight per
// key. A batch leaves the moment the previous one for that key has finished, never on a timer:
// under light traffic every request goes alone with no added latency, and under a flash sale
// the requests that arrived while a transaction was committing all go in the next one.
import { DomainError } from '../errors.ts';

interface Waiter<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

/** Runs one batch; returns, per item in order, its result or the error for that item alone. */
export type BatchRunner<K, I, O> = (key: K, items: I[]) => Promise<Array<O | Error>>;

export class KeyedBatcher<K, I, O> {
  private readonly queues = new Map<K, Array<Waiter<I, O>>>();

  constructor(
    private readonly run: BatchRunner<K, I, O>,
    /** Bounds a transaction's size and how long it holds the event's row lock. */
    private readonly maxBatch: number,
    /** Bounds memory per key; past it, callers are told to come back rather than queue. */
    private readonly maxQueue: number,
  ) {}

  submit(key: K, item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const waiter = { item, resolve, reject };
      const queue = this.queues.get(key);
      if (queue !== undefined) {
        if (queue.length >= this.maxQueue) {
          reject(new DomainError('overloaded', 'too many requests are waiting for this event; retry shortly'));
        } else {
          queue.push(waiter);
        }
        return;
      }
      const fresh = [waiter];
      this.queues.set(key, fresh);
      void this.drain(key, fresh);
    });
  }

  private async drain(key: K, queue: Array<Waiter<I, O>>): Promise<void> {
    while (queue.length > 0) {
      // Taken from the front: arrival order is grant order.
      const batch = queue.splice(0, this.maxBatch);
      try {
        const results = await this.run(
          key,
          batch.map((waiter) => waiter.item),
        );
        batch.forEach((waiter, i) => {
          const result = results[i];
          if (result instanceof Error) waiter.reject(result);
          else waiter.resolve(result as O);
        });
      } catch (error) {
        for (const waiter of batch) waiter.reject(error);
      }
    }
    this.queues.delete(key);
  }
}
