// The change feed inside one process: the sequencer that numbers committed changes, and the hub
// that hands new changes to this process's streams.
//
// Sequencing runs right after a local commit that wrote changes (the outbox tells us), and on a
// tick for changes written by other processes (or by one that died before numbering its own).
// Only one sequencer runs at a time across processes (its counter row is locked, skip locked).
//
// Streams learn of new positions from (a) this process's sequencer, (b) another process's, over
// PostgreSQL's LISTEN/NOTIFY (PGlite: the same, in process), and (c) a poll of the log, which is
// how MySQL learns at all and how PostgreSQL catches a notification lost while reconnecting.
import type { Change } from '../model.ts';
import type { Store } from '../storage/store.ts';
import { Outbox } from './outbox.ts';

/** How often a process looks for changes it was not told about. */
export const SEQUENCE_TICK_MS = 250;
/** At most one numbering run this often; a stream or webhook waits at most this much more. */
export const SEQUENCE_MIN_INTERVAL_MS = 50;
const POLL_WITH_NOTIFY_MS = 1000;
const POLL_WITHOUT_NOTIFY_MS = 250;
/** Changes numbered, or read, per statement. */
const PAGE = 1000;

export type ChangeListener = (changes: Change[]) => void;

export interface FeedLog {
  warn(details: object, message: string): void;
}

export class ChangeFeed {
  readonly outbox: Outbox;
  /** Highest position handed to this process's listeners. */
  private seen = 0;
  private sequencing: Promise<void> | undefined;
  private sequenceAgain = false;
  private lastSequenceAt = 0;
  private sequenceTimer: NodeJS.Timeout | undefined;
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
    this.outbox = new Outbox(store, enabled, () => this.sequenceSoon());
  }

  async start(): Promise<void> {
    if (this.started || !this.outbox.enabled) return;
    this.started = true;
    this.seen = await this.store.lastPosition();
    this.stopListening = await this.store.sql.listen?.('box_office_changes', () => this.pullSoon());
    const poll = this.stopListening === undefined ? POLL_WITHOUT_NOTIFY_MS : POLL_WITH_NOTIFY_MS;
    this.timers.push(
      setInterval(() => this.sequenceSoon(), SEQUENCE_TICK_MS),
      setInterval(() => this.listeners.size > 0 && this.pullSoon(), poll),
    );
    for (const timer of this.timers) timer.unref();
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    clearTimeout(this.sequenceTimer);
    this.sequenceTimer = undefined;
    await this.stopListening?.();
    await Promise.allSettled([this.sequencing, this.pulling]);
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
   * Numbers new changes soon: at once if no run started in the last SEQUENCE_MIN_INTERVAL_MS,
   * else when that interval is over (or right after the run in progress). Under a flash sale
   * one run then numbers several batches' changes, instead of a transaction per batch.
   */
  sequenceSoon(): void {
    if (!this.started) return;
    if (this.sequencing !== undefined) {
      this.sequenceAgain = true;
      return;
    }
    const wait = SEQUENCE_MIN_INTERVAL_MS - (Date.now() - this.lastSequenceAt);
    if (wait > 0) {
      this.sequenceTimer ??= setTimeout(() => {
        this.sequenceTimer = undefined;
        this.sequenceSoon();
      }, wait);
      return;
    }
    this.lastSequenceAt = Date.now();
    this.sequencing = this.sequence().finally(() => {
      this.sequencing = undefined;
      if (this.sequenceAgain) {
        this.sequenceAgain = false;
        this.sequenceSoon();
      }
    });
  }

  private async sequence(): Promise<void> {
    try {
      let last: number | null = null;
      for (let page = 0; page < 100; page++) {
        const numbered = await this.store.sequenceChanges(PAGE);
        if (numbered === null) break;
        last = numbered;
      }
      if (last === null) return;
      await this.store.sql.notify?.('box_office_changes', String(last));
      this.pullSoon();
    } catch (error) {
      // The database is down or busy: the next commit or tick tries again.
      this.log.warn({ err: error }, 'could not number changes');
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
        const changes = await this.store.changesAfter(this.seen, PAGE);
        if (changes.length === 0) return;
        this.seen = changes[changes.length - 1]!.position;
        this.dispatch(changes);
        if (changes.length < PAGE) return;
      }
    } catch (error) {
      this.log.warn({ err: error }, 'could not read new changes');
    }
  }

  private dispatch(changes: Change[]): void {
    const byEvent = new Map<number, Change[]>();
    for (const change of changes) {
      const list = byEvent.get(change.eventId);
      if (list === undefined) byEvent.set(change.eventId, [change]);
      else list.push(change);
    }
    for (const listener of this.listeners.get('all') ?? []) listener(changes);
    for (const [eventId, list] of byEvent) {
      for (const listener of this.listeners.get(eventId) ?? []) listener(list);
    }
  }
}
