// Writing changes: every service that changes an event hands its changes to the outbox inside
// its own transaction (one statement for any number), and tells it once that transaction has
// committed, so that the feed publishes them without waiting for its next tick.
import type { Counters, EventBooks, NewChange } from '../model.ts';
import type { Store, Tx } from '../storage/store.ts';

export class Outbox {
  constructor(
    private readonly store: Store,
    /** False only to measure what the feed costs (CHANGE_FEED=false): nothing is written. */
    readonly enabled: boolean,
    private readonly onCommitted: () => void = () => {},
  ) {}

  async record(tx: Tx, changes: NewChange[], now: Date): Promise<void> {
    if (this.enabled && changes.length > 0) await this.store.recordChanges(tx, changes, now);
  }

  /**
   * One change, with the event's exact snapshot read inside `tx` after the change's own writes
   * (one more statement: for the paths that are not a flash sale's).
   */
  async recordOne(tx: Tx, change: Omit<NewChange, 'snapshot'>, now: Date): Promise<void> {
    if (!this.enabled) return;
    const snapshot = await this.store.snapshotIn(tx, change.eventId, now);
    if (snapshot === null) return;
    const { total, available, held, booked, waiting } = snapshot;
    await this.store.recordChanges(tx, [{ ...change, snapshot: { total, available, held, booked, waiting } }], now);
  }

  /** Call after the transaction that recorded changes has committed. */
  committed(): void {
    if (this.enabled) this.onCommitted();
  }
}

/**
 * The snapshot after each of a run of changes, from the snapshot after the last one: change i
 * moved `seats[i]` seats from `from` to `to`, so undoing the later ones gives each its own.
 */
export function snapshotsBefore(
  final: Counters,
  seats: number[],
  from: 'available' | 'held',
  to: 'held' | 'booked' | 'available',
): Counters[] {
  let later = 0;
  const snapshots: Counters[] = new Array<Counters>(seats.length);
  for (let i = seats.length - 1; i >= 0; i--) {
    snapshots[i] = { ...final, [from]: final[from] + later, [to]: final[to] - later };
    later += seats[i]!;
  }
  return snapshots;
}

/**
 * The hold.expired changes of a reclaim, from the event's counters as locked before it, each
 * with the snapshot after it; and the counters after them all.
 */
export function reclaimChanges(
  event: EventBooks,
  holds: ReadonlyArray<{ id: number; qty: number; customer: string | null }>,
): { changes: NewChange[]; after: Counters } {
  let after: Counters = {
    total: event.total,
    available: event.available,
    held: event.held,
    booked: event.booked,
    waiting: event.waiting,
  };
  const changes = holds.map((hold): NewChange => {
    after = { ...after, available: after.available + hold.qty, held: after.held - hold.qty };
    return {
      eventId: event.id,
      type: 'hold.expired',
      holdId: hold.id,
      qty: hold.qty,
      customer: hold.customer,
      snapshot: after,
    };
  });
  return { changes, after };
}
