// Listings for staff: an event's holds and bookings a page at a time, and every booking for the
// export. Pages are keyset pages in id order; a page is read in one statement, so it is
// consistent in itself, while an export of many pages sees each page as of when it is read.
import type { Clock } from '../clock.ts';
import { notFound } from '../errors.ts';
import type { BookingStatus, HoldStatus } from '../model.ts';
import type { ListOrder, ListedBooking, ListedHold } from '../model.ts';
import type { Store } from '../storage/store.ts';

export interface PageRequest {
  afterId: number | null;
  limit: number;
  order: ListOrder;
}

export interface Page<T> {
  rows: T[];
  /** The last id of this page when more may follow. */
  nextAfterId: number | null;
}

/** Rows per statement in the export: memory stays bounded whatever the event's size. */
const EXPORT_PAGE_ROWS = 500;

export class ListingsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly exportPageRows = EXPORT_PAGE_ROWS,
  ) {}

  async holds(
    eventId: number,
    filter: { status?: HoldStatus; customer?: string },
    page: PageRequest,
  ): Promise<Page<ListedHold>> {
    // One row more than asked says whether another page follows, without a count.
    const rows = await this.store.listHolds(eventId, filter, { ...page, limit: page.limit + 1 }, this.clock.now());
    return this.paged(eventId, rows, page.limit);
  }

  async bookings(
    eventId: number,
    filter: { status?: BookingStatus; customer?: string },
    page: PageRequest,
  ): Promise<Page<ListedBooking>> {
    const rows = await this.store.listBookings(eventId, filter, { ...page, limit: page.limit + 1 });
    return this.paged(eventId, rows, page.limit);
  }

  /**
   * Every booking of the event, oldest first, a page per statement. The event is checked first,
   * so that a 404 can still be answered before the first byte of the export is sent.
   */
  async exportBookings(eventId: number): Promise<AsyncGenerator<ListedBooking[]>> {
    await this.mustExist(eventId);
    return this.bookingPages(eventId);
  }

  private async *bookingPages(eventId: number): AsyncGenerator<ListedBooking[]> {
    let afterId: number | null = null;
    for (;;) {
      const rows = await this.store.listBookings(
        eventId,
        {},
        {
          afterId,
          limit: this.exportPageRows,
          order: 'asc',
        },
      );
      if (rows.length > 0) yield rows;
      if (rows.length < this.exportPageRows) return;
      afterId = rows[rows.length - 1]!.id;
    }
  }

  private async paged<T extends { id: number }>(eventId: number, rows: T[], limit: number): Promise<Page<T>> {
    // An empty page may mean there is no such event: only then is it worth a second statement.
    if (rows.length === 0) await this.mustExist(eventId);
    const shown = rows.slice(0, limit);
    return { rows: shown, nextAfterId: rows.length > limit ? shown[shown.length - 1]!.id : null };
  }

  private async mustExist(eventId: number): Promise<void> {
    if ((await this.store.snapshot(eventId, this.clock.now())) === null) throw notFound('event', eventId);
  }
}
