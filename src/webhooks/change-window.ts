// The changes the delivery worker read last, shared by every endpoint it serves: under a sale
// the endpoints' cursors are close together, so N endpoints cost about one read of the log (and
// one rendering of each change) instead of N. It relies only on what ChangeStore.changesAfter
// promises: positions increase, and a read that resumes after a position misses nothing after
// it. So the window is contiguous: it holds every change in (after, last position held], and a
// read after its end extends it. In a process with the change feed, the feed's own reads extend
// it too (offer): caught-up endpoints then never read the log at all.
//
// Batches are shared too: the first endpoint at a cursor (with the same wanted types) chooses
// the batch after it and builds its body, once, as bytes; the next endpoint at that cursor sends
// the same batch (its own webhook-id and signature over the same bytes), even if more changes
// came meanwhile. A batch (after, last] stays a valid batch for as long as its changes are in
// the log, so endpoints that start together stay together, and N endpoints cost one body.
import { promisify } from 'node:util';
import { constants, gzip } from 'node:zlib';
import { staffChangeJson } from '../changes/render.ts';
import type { Change } from '../model.ts';
import type { ChangeStore } from '../storage/changes.sql.ts';

/** A change and its JSON, rendered once, when first sent. */
export interface WindowChange {
  change: Change;
  json: string | undefined;
}

/** A head batch as sent: the changes after `after` up to `last`, those wanted, and the body. */
export interface Batch {
  after: number;
  /** The cursor moves here once the batch is delivered (changes not wanted included). */
  last: number;
  /** The wanted changes' positions, first and last (for the webhook-id), and how many. */
  firstWanted: number;
  lastWanted: number;
  count: number;
  /** The request body, `{"type":"changes.batch","data":[...]}` as UTF-8; empty when none is wanted. */
  body: Buffer;
  /** Each wanted change's `at`, in ms, for the lag metric. */
  atsMs: Float64Array;
  /** True when the read that chose it was full: more changes are waiting. */
  full: boolean;
  /** The body compressed, made for the first endpoint that takes gzip and kept for the others. */
  gzipped?: Promise<Buffer>;
}

/**
 * zlib's fastest level: a sale's batch (0.2 MB of JSON) compresses in about 0.2 ms to a twelfth
 * of its size; the default level took about twice as long for a tenth less.
 */
const GZIP_LEVEL = constants.Z_BEST_SPEED;
const gzipAsync = promisify(gzip);

/** The batch's body gzipped, compressed once (off the event loop) whichever endpoints send it. */
export function gzippedBody(batch: Batch): Promise<Buffer> {
  batch.gzipped ??= gzipAsync(batch.body, { level: GZIP_LEVEL });
  return batch.gzipped;
}

/** Changes kept: trimmed back to WINDOW_KEEP once past WINDOW_MAX, so that a trim, which copies
 * the window, comes once per WINDOW_MAX - WINDOW_KEEP changes rather than on every read. */
const WINDOW_KEEP = 20_000;
const WINDOW_MAX = 30_000;
/** Batches kept for other endpoints at the same cursor, at most this many bytes of bodies. */
const BATCH_CACHE_BYTES = 16 * 1024 * 1024;

export class ChangeWindow {
  /** Every change after this position, up to the last held, is held. */
  private after = 0;
  private changes: WindowChange[] = [];
  private empty = true;
  /** By `after` and wanted types, oldest first. */
  private readonly batches = new Map<string, Batch>();
  private batchBytes = 0;
  private readonly building = new Map<string, Promise<Batch | null>>();

  constructor(private readonly store: Pick<ChangeStore, 'changesAfter'>) {}

  /** Changes read elsewhere: every change in (after, their last position], in position order. */
  offer(after: number, changes: Change[]): void {
    if (changes.length === 0) return;
    const end = this.empty ? this.after : this.changes[this.changes.length - 1]!.change.position;
    if (after === end) this.extend(end, changes.map(unrendered));
    // Newer than the window and not contiguous with it (the window fell behind): start again there.
    else if (after > end) this.replace(after, changes.map(unrendered));
  }

  /**
   * The head batch after `after` for an endpoint that wants `types` (empty: all): up to `limit`
   * changes, or, for a retry, those up to `end` as first chosen. Null when nothing is after
   * `after` yet.
   */
  async batch(after: number, end: number | null, types: readonly string[], limit: number): Promise<Batch | null> {
    const key = `${after} ${types.join(',')}`;
    const kept = this.batches.get(key);
    if (kept !== undefined && (end === null || kept.last === end)) return kept;
    // Endpoints claimed together ask together: one of them builds, the others wait for it.
    const building = end === null ? this.building.get(key) : undefined;
    if (building !== undefined) return building;
    const made = this.make(key, after, end, types, limit);
    if (end !== null) return made;
    this.building.set(key, made);
    try {
      return await made;
    } finally {
      this.building.delete(key);
    }
  }

  private async make(
    key: string,
    after: number,
    end: number | null,
    types: readonly string[],
    limit: number,
  ): Promise<Batch | null> {
    let changes = await this.read(after, limit);
    if (end !== null) {
      // A retry: the same changes as the first attempt (those older than the cursor's position
      // never reappear; a purge may have removed some).
      changes = changes.filter(({ change }) => change.position <= end);
    } else if (changes.length === 0) {
      return null;
    }
    const wanted = types.length === 0 ? changes : changes.filter(({ change }) => types.includes(change.type));
    const made: Batch = {
      after,
      last: end ?? changes[changes.length - 1]!.change.position,
      firstWanted: wanted[0]?.change.position ?? 0,
      lastWanted: wanted[wanted.length - 1]?.change.position ?? 0,
      count: wanted.length,
      body:
        wanted.length === 0
          ? Buffer.alloc(0)
          : Buffer.from(`{"type":"changes.batch","data":[${wanted.map(jsonOf).join(',')}]}`),
      atsMs: Float64Array.from(wanted, ({ change }) => change.at.getTime()),
      full: changes.length >= limit,
    };
    this.keep(key, made);
    return made;
  }

  private keep(key: string, batch: Batch): void {
    const old = this.batches.get(key);
    if (old !== undefined) {
      this.batches.delete(key);
      this.batchBytes -= old.body.length;
    }
    this.batches.set(key, batch);
    this.batchBytes += batch.body.length;
    for (const [oldest, { body }] of this.batches) {
      if (this.batchBytes <= BATCH_CACHE_BYTES) break;
      this.batches.delete(oldest);
      this.batchBytes -= body.length;
    }
  }

  /** Up to `limit` changes after `position`, in position order, as changesAfter gives them. */
  async read(position: number, limit: number): Promise<WindowChange[]> {
    const end = this.empty ? this.after : this.changes[this.changes.length - 1]!.change.position;
    if (this.empty || position < this.after || position > end) {
      const read = (await this.store.changesAfter(position, limit)).map(unrendered);
      // Kept when it starts at or beyond the window's end (the newest knowledge); older reads
      // (an endpoint catching up) are not worth keeping.
      if (position >= end) this.replace(position, read);
      return read;
    }
    const start = lowerBound(this.changes, position);
    const held = this.changes.slice(start, start + limit);
    if (held.length === limit) return held;
    // Up to the window's end from memory; the rest from the log, which extends the window.
    const more = (await this.store.changesAfter(end, limit - held.length)).map(unrendered);
    this.extend(end, more);
    return held.concat(more);
  }

  private replace(after: number, read: WindowChange[]): void {
    this.after = after;
    this.changes = read;
    this.empty = read.length === 0;
  }

  private extend(from: number, more: WindowChange[]): void {
    const end = this.empty ? this.after : this.changes[this.changes.length - 1]!.change.position;
    // Another read extended it meanwhile: keep whichever knowledge is contiguous.
    if (end !== from || more.length === 0) return;
    for (const change of more) this.changes.push(change);
    this.empty = false;
    if (this.changes.length > WINDOW_MAX) {
      const drop = this.changes.length - WINDOW_KEEP;
      this.after = this.changes[drop - 1]!.change.position;
      this.changes = this.changes.slice(drop);
    }
  }
}

const unrendered = (change: Change): WindowChange => ({ change, json: undefined });

function jsonOf(held: WindowChange): string {
  held.json ??= staffChangeJson(held.change);
  return held.json;
}

/** The index of the first change after `position`. */
function lowerBound(changes: WindowChange[], position: number): number {
  let low = 0;
  let high = changes.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (changes[mid]!.change.position <= position) low = mid + 1;
    else high = mid;
  }
  return low;
}
