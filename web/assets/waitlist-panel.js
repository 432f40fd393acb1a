// The event page's waiting list (staff): how many entries wait, are offered, converted and
// expired, the entries in join order, and a Remove button on a live one (an offer is withdrawn
// and its seats go to the next entry). A module of its own, so the event page only mounts it.
import { api } from './api.js';
import { clockTime, count, h, replace } from './dom.js';
import { problemView } from './problems.js';

const PAGE = 200;
const LIVE = new Set(['waiting', 'offered']);

/**
 * @param {HTMLElement} section an empty section of the page, shown to staff only
 * @param {number} eventId
 * @param {() => Promise<void>} onChanged run after a removal (the page reads its figures again)
 */
export function waitlistPanel(section, eventId, onChanged) {
  const summary = h('p', { id: 'waitlist-summary' });
  const problem = h('div');
  const rows = h('tbody', { id: 'waitlist-rows' });
  const heading = h('h2', { id: 'waitlist-heading' }, 'Waiting list');
  replace(
    section,
    heading,
    summary,
    problem,
    h(
      'table',
      { 'aria-labelledby': 'waitlist-heading' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Entry', 'Customer', 'Seats', 'Status', 'Joined', 'Hold', 'Action'].map((name) =>
            h('th', { scope: 'col' }, name),
          ),
        ),
      ),
      rows,
    ),
  );
  section.setAttribute('aria-labelledby', 'waitlist-heading');

  /** @param {any} entry */
  async function remove(entry) {
    if (!confirm(`Remove entry #${entry.entry_id} (${entry.customer}) from the waiting list?`)) return;
    try {
      await api(`/events/${eventId}/waitlist/${entry.entry_id}`, { method: 'DELETE', admin: true });
      replace(problem);
    } catch (error) {
      replace(problem, problemView(error));
    }
    await onChanged();
  }

  /** @param {any} entry */
  const row = (entry) =>
    h(
      'tr',
      { dataset: { status: entry.status } },
      h('td', {}, `#${entry.entry_id}`),
      h('td', {}, entry.customer),
      h('td', {}, entry.qty),
      h('td', {}, entry.status),
      h('td', {}, clockTime(entry.created_at)),
      h('td', {}, entry.hold_id === null ? '' : `#${entry.hold_id}`),
      h(
        'td',
        {},
        LIVE.has(entry.status)
          ? h(
              'button',
              {
                type: 'button',
                class: 'link',
                'aria-label': `Remove entry #${entry.entry_id}`,
                onclick: () => void remove(entry),
              },
              'Remove',
            )
          : '',
      ),
    );

  return {
    /** Reads the first page of entries again. */
    async refresh() {
      try {
        const page = await api(`/events/${eventId}/waitlist?limit=${PAGE}`, { admin: true });
        /** @type {Record<string, number>} */
        const by = {};
        for (const entry of page.entries) by[entry.status] = (by[entry.status] ?? 0) + 1;
        summary.textContent =
          page.entries.length === 0
            ? 'Nobody is on the waiting list.'
            : ['waiting', 'offered', 'converted', 'expired']
                .map((status) => `${count(by[status] ?? 0, 'entry', 'entries')} ${status}`)
                .join(', ') + (page.next_cursor === null ? '' : ` (first ${PAGE} shown)`);
        replace(rows, ...page.entries.map(row));
        replace(problem);
      } catch (error) {
        replace(problem, problemView(error));
      }
    },
  };
}
