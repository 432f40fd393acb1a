// A staff listing (an event's holds or bookings) as a table, newest first, a page at a time,
// with a status filter, an optional customer filter and an action button per row.
import { api } from './api.js';
import { byId, h, replace } from './dom.js';
import { problemView } from './problems.js';

const PAGE_SIZE = 20;

/**
 * @param {{
 *   prefix: string,
 *   path: string,
 *   key: 'holds' | 'bookings',
 *   cells: (row: any) => Array<Node | string>,
 *   action: (row: any) => Node | null,
 *   customer?: () => string | null,
 * }} options customer: the customer to list alone (?customer=), or null for everyone. The page has #<prefix>-status (a select), #<prefix>-rows (a tbody),
 *   #<prefix>-newer and #<prefix>-older (buttons) and #<prefix>-problem.
 */
export function listingTable({ prefix, path, key, cells, action, customer = () => null }) {
  const status = /** @type {HTMLSelectElement} */ (byId(`${prefix}-status`));
  const rows = byId(`${prefix}-rows`);
  const newer = /** @type {HTMLButtonElement} */ (byId(`${prefix}-newer`));
  const older = /** @type {HTMLButtonElement} */ (byId(`${prefix}-older`));
  const problem = byId(`${prefix}-problem`);
  const columns = rows.closest('table')?.querySelectorAll('th').length ?? 1;
  /** Cursors of the pages before this one; the first page has none. @type {Array<string | null>} */
  let cursors = [null];
  /** @type {string | null} */
  let next = null;

  const load = async () => {
    const cursor = cursors[cursors.length - 1];
    const query = new URLSearchParams({ order: 'desc', limit: String(PAGE_SIZE) });
    if (status.value !== '') query.set('status', status.value);
    const only = customer();
    if (only !== null) query.set('customer', only);
    if (cursor !== null && cursor !== undefined) query.set('cursor', cursor);
    try {
      const body = await api(`${path}?${query}`, { admin: true });
      const list = body[key];
      next = body.next_cursor;
      replace(
        rows,
        ...list.map((row) => h('tr', {}, ...cells(row).map((cell) => h('td', {}, cell)), h('td', {}, action(row)))),
      );
      if (list.length === 0) {
        replace(
          rows,
          h(
            'tr',
            {},
            h(
              'td',
              { colspan: columns, class: 'muted' },
              `${status.value === '' ? 'None yet' : `None ${status.value}`}${only === null ? '' : ` for “${only}”`}.`,
            ),
          ),
        );
      }
      replace(problem);
    } catch (error) {
      replace(problem, problemView(error));
    }
    newer.disabled = cursors.length === 1;
    older.disabled = next === null;
  };

  /** From the newest page again: the filters changed. */
  const reset = () => {
    cursors = [null];
    return load();
  };
  status.addEventListener('change', () => void reset());
  older.addEventListener('click', () => {
    cursors.push(next);
    void load();
  });
  newer.addEventListener('click', () => {
    cursors.pop();
    void load();
  });
  return {
    load,
    reset,
    /** Reloads when showing the newest page; an operator paging back in time is left alone. */
    refresh: () => (cursors.length === 1 ? load() : Promise.resolve()),
  };
}
