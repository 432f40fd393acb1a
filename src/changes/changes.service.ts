// Reading the change feed: pages of the log, and what a stream starts from.
import type { Clock } from '../clock.ts';
import { notFound } from '../errors.ts';
import type { Change, Snapshot } from '../model.ts';
import type { Store } from '../storage/store.ts';
import type { ChangeFeed } from './feed.ts';

export interface ChangePage {
  changes: Change[];
  /** Where the next read starts: the last position of this page, or `after` when it was empty. */
  next: number;
}

/** Events a stream of every event starts with, at most. */
const ALL_EVENTS_SNAPSHOT_LIMIT = 1000;

export class ChangesService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    readonly feed: ChangeFeed,
  ) {}

  async page(after: number, limit: number, eventId?: number): Promise<ChangePage> {
    if (eventId !== undefined) await this.snapshot(eventId);
    const changes = await this.store.changesAfter(after, limit, eventId);
    return { changes, next: changes.length > 0 ? changes[changes.length - 1]!.position : after };
  }

  async snapshot(eventId: number): Promise<Snapshot> {
    const snapshot = await this.store.snapshot(eventId, this.clock.now());
    if (snapshot === null) throw notFound('event', eventId);
    return snapshot;
  }

  /** Every event's snapshot (the first ALL_EVENTS_SNAPSHOT_LIMIT), for a stream of all events. */
  snapshots(): Promise<Snapshot[]> {
    return this.store.listSnapshots(0, ALL_EVENTS_SNAPSHOT_LIMIT, this.clock.now());
  }

  /** The log's publication watermark. */
  lastPosition(): Promise<number> {
    return this.store.lastPosition();
  }
}
