// The change feed inside one process: it moves the log's publication watermark
// (storage/changes.sql.ts) and hands newly published changes to this process's streams.
//
// The watermark moves right after a local commit that wrote changes (the outbox tells us), when
// another process says it published (PostgreSQL's LISTEN/NOTIFY; PGlite: the same, in process),
// and on a tick, which is how MySQL learns of other processes' changes at all and how
// PostgreSQL catches a notification lost while reconnecting.
import type { Change } from '../model.ts';
import type { Store } from '../storage/store.ts';
import { Outbox } from './outbox.ts';

/** How often a process looks for changes it was not told about. */
export const PUBLISH_TICK_MS = 250;
/** At most one advance of the watermark this often; a stream or webhook waits at most this much more. */
export const PUBLISH_MIN_INTERVAL_MS = 50;
/** Changes read per statement. */
const PAGE = 1000;

/**
 * New changes of one scope, in position order: with the scope 'all', every change in
 * (after, last position], as ChangeStore.changesAfter(after) read them.
 */
export type ChangeListener = (changes: Change[], after: number) => void;

export interface FeedLog {
  warn(details: object, message: string): void;
}

export class ChangeFeed {
  readonly outbox: Outbox;
  /** Highest position handed to this process's listeners. */
  private seen = 0;
  /** Highest watermark this process told the others about. */
  private announced = 0;
  private publishing: Promise<void> | undefined;
  private publishAgain = false;
  private lastPublishAt = 0;
  private publishTimer: NodeJS.Timeout | undefined;
  private pulling: Promise<void> | undefined;
  private pullAgain = false;
  private readonly listeners = new Map<number | 'all', Set<ChangeListener>>();
  private timers: NodeJS.Timeout[] = [];
  private stopListening: (() => Promise<void>) | undefined;
  private started = false;

  constructor(
    private readonly store: Store,
    enabled: boolean,
    private readonly log: FeedLog,
  ) {
    this.outbox = new Outbox(store, enabled, () => this.publishSoon());
  }

  async start(): Promise<void> {
    if (this.started || !this.outbox.enabled) return;
    this.started = true;
    this.seen = await this.store.lastPosition();
    this.announced = this.seen;
    this.stopListening = await this.store.sql.listen?.('box_office_changes', () => this.publishSoon());
    this.timers.push(setInterval(() => this.publishSoon(), PUBLISH_TICK_MS));
    for (const timer of this.timers) timer.unref();
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    clearTimeout(this.publishTimer);
    this.publishTimer = undefined;
    await this.stopListening?.();
    await Promise.allSettled([this.publishing, this.pulling]);
  }

  /** The highest position this process has seen. */
  get position(): number {
    return this.seen;
  }

  /** Calls `listener` with each new page of changes of one event (or of all); returns the unsubscribe. */
  subscribe(scope: number | 'all', listener: ChangeListener): () => void {
    let set = this.listeners.get(scope);
    if (set === undefined) this.listeners.set(scope, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(scope);
    };
  }

  /**
   * Moves the watermark soon: at once if no advance started in the last PUBLISH_MIN_INTERVAL_MS,
   * else when that interval is over (or right after the advance in progress). Under a flash sale
   * one advance then covers several batches' changes.
   */
  publishSoon(): void {
    if (!this.started) return;
    if (this.publishing !== undefined) {
      this.publishAgain = true;
      return;
    }
    const wait = PUBLISH_MIN_INTERVAL_MS - (Date.now() - this.lastPublishAt);
    if (wait > 0) {
      this.publishTimer ??= setTimeout(() => {
        this.publishTimer = undefined;
        this.publishSoon();
      }, wait);
      return;
    }
    this.lastPublishAt = Date.now();
    this.publishing = this.publish().finally(() => {
      this.publishing = undefined;
      if (this.publishAgain) {
        this.publishAgain = false;
        this.publishSoon();
      }
    });
  }

  private async publish(): Promise<void> {
    try {
      // The watermark may also have moved under another caller (a stream opening reads it), so
      // what counts is whether it is past what was announced and read, not whether it moved.
      const published = await this.store.publishChanges();
      if (published > this.announced) {
        this.announced = published;
        // The other processes move their own watermarks when told; they reach this one or wait
        // for their transactions in progress to end.
        await this.store.sql.notify?.('box_office_changes', String(published));
      }
      if (published > this.seen) this.pullSoon();
    } catch (error) {
      // The database is down or busy: the next commit or tick tries again.
      this.log.warn({ err: error }, 'could not publish changes');
    }
  }

  /** Reads new changes for this process's listeners now (or right after the read in progress). */
  pullSoon(): void {
    if (!this.started || this.listeners.size === 0) return;
    if (this.pulling !== undefined) {
      this.pullAgain = true;
      return;
    }
    this.pulling = this.pull().finally(() => {
      this.pulling = undefined;
      if (this.pullAgain) {
        this.pullAgain = false;
        this.pullSoon();
      }
    });
  }

  private async pull(): Promise<void> {
    try {
      for (;;) {
        const after = this.seen;
        const changes = await this.store.changesAfter(after, PAGE);
        if (changes.length === 0) return;
        this.seen = changes[changes.length - 1]!.position;
        this.dispatch(changes, after);
        if (changes.length < PAGE) return;
      }
    } catch (error) {
      this.log.warn({ err: error }, 'could not read new changes');
    }
  }

  private dispatch(changes: Change[], after: number): void {
    const byEvent = new Map<number, Change[]>();
    for (const change of changes) {
      const list = byEvent.get(change.eventId);
      if (list === undefined) byEvent.set(change.eventId, [change]);
      else list.push(change);
    }
    for (const listener of this.listeners.get('all') ?? []) listener(changes, after);
    for (const [eventId, list] of byEvent) {
      for (const listener of this.listeners.get(eventId) ?? []) listener(list, after);
    }
  }
}
