// The changes the delivery worker read last, shared by every endpoint it serves: under a sale
// the endpoints' cursors are close together, so N endpoints cost about one read of the log (and
// one rendering of each change) instead of N. It relies only on what ChangeStore.changesAfter
// promises: positions increase, and a read that resumes after a position misses nothing after
// it. So the window is contiguous: it holds every change in (after, last position held], and a
// read after its end extends it.
import { renderChange } from '../changes/render.ts';
import type { Change } from '../model.ts';
import type { ChangeStore } from '../storage/changes.sql.ts';

/** A change and its JSON, rendered once. */
export interface WindowChange {
  change: Change;
  json: string;
}

/** Changes kept: trimmed back to WINDOW_KEEP once past WINDOW_MAX, so that a trim, which copies
 * the window, comes once per WINDOW_MAX - WINDOW_KEEP changes rather than on every read. */
const WINDOW_KEEP = 20_000;
const WINDOW_MAX = 30_000;

export class ChangeWindow {
  /** Every change after this position, up to the last held, is held. */
  private after = 0;
  private changes: WindowChange[] = [];
  private empty = true;

  constructor(private readonly store: Pick<ChangeStore, 'changesAfter'>) {}

  /** Up to `limit` changes after `position`, in position order, as changesAfter gives them. */
  async read(position: number, limit: number): Promise<WindowChange[]> {
    const end = this.empty ? this.after : this.changes[this.changes.length - 1]!.change.position;
    if (this.empty || position < this.after || position > end) {
      const read = (await this.store.changesAfter(position, limit)).map(rendered);
      // Kept when it starts at or beyond the window's end (the newest knowledge); older reads
      // (an endpoint catching up) are not worth keeping.
      if (position >= end) this.replace(position, read);
      return read;
    }
    const start = lowerBound(this.changes, position);
    const held = this.changes.slice(start, start + limit);
    if (held.length === limit) return held;
    // Up to the window's end from memory; the rest from the log, which extends the window.
    const more = (await this.store.changesAfter(end, limit - held.length)).map(rendered);
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

const rendered = (change: Change): WindowChange => ({ change, json: JSON.stringify(renderChange(change, 'staff')) });

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
