import type { Clock } from '../clock.ts';
import { notFound } from '../errors.ts';
import type { EventRow, Snapshot, Store } from '../storage/store.ts';

export class EventsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  create(name: string, totalSeats: number): Promise<EventRow> {
    return this.store.insertEvent(name, totalSeats, this.clock.now());
  }

  async snapshot(eventId: number): Promise<Snapshot> {
    const snapshot = await this.store.snapshot(eventId, this.clock.now());
    if (snapshot === null) throw notFound('event', eventId);
    return snapshot;
  }
}
