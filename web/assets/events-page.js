// The operator console's first page: every event with a live availability bar; staff can
// create, rename and resize events here.
import { api } from './api.js';
import { availabilityBar } from './bar.js';
import { announce, byId, h, replace } from './dom.js';
import { eventEditForm } from './event-form.js';
import { follow, modeText } from './live.js';
import { problemView } from './problems.js';
import { limitFields, limitsRefused } from './limits.js';
import { initSession } from './session.js';

const PAGE_SIZE = 100;
const tbody = byId('events');
const more = byId('more-events');
const mode = byId('mode');

/** @type {Map<number, { row: HTMLTableRowElement, snapshot: any, update: (snapshot: any) => void }>} */
const rows = new Map();
let pagesShown = 1;
/** @type {string | null} */
let nextCursor = null;

/** A row per event; an existing row takes the new figures. @param {any} snapshot */
function show(snapshot) {
  const known = rows.get(snapshot.event_id);
  if (known !== undefined) return known.update(snapshot);
  const bar = availabilityBar();
  const link = h('a', { href: `/console/events/${snapshot.event_id}` });
  const edit = h('details', {}, h('summary', {}, 'Edit', h('span', { class: 'visually-hidden' }, ` ${snapshot.name}`)));
  const row = h(
    'tr',
    { dataset: { eventId: String(snapshot.event_id) } },
    h('td', { class: 'num' }, `#${snapshot.event_id}`),
    h('td', { class: 'name' }, link),
    h('td', {}, bar.element),
    h('td', { class: 'admin-only-cell' }, edit),
  );
  const entry = {
    row,
    snapshot,
    /** @param {any} next */
    update(next) {
      entry.snapshot = { ...entry.snapshot, ...next };
      link.textContent = entry.snapshot.name;
      bar.update(entry.snapshot);
    },
  };
  // The form is built when opened, so that it starts from the event as it is then.
  edit.addEventListener('toggle', () => {
    if (!edit.open) return;
    edit.querySelector('form')?.remove();
    edit.append(eventEditForm(entry.snapshot, (saved) => entry.update(saved)));
  });
  entry.update(snapshot);
  rows.set(snapshot.event_id, entry);
  tbody.append(row);
  byId('events-empty').hidden = true;
}

/** Reads every page shown so far again: the fallback when there is no stream. */
async function reload() {
  let cursor = null;
  let next = null;
  try {
    for (let page = 0; page < pagesShown; page++) {
      const body = await api(`/events?limit=${PAGE_SIZE}${cursor === null ? '' : `&cursor=${cursor}`}`);
      body.events.forEach(show);
      next = body.next_cursor;
      if (next === null) break;
      cursor = next;
    }
    replace(byId('events-problem'));
  } catch (error) {
    replace(byId('events-problem'), problemView(error));
    throw error;
  }
  nextCursor = next;
  more.hidden = nextCursor === null;
  byId('events-empty').hidden = rows.size > 0;
}

more.addEventListener('click', () => {
  void (async () => {
    pagesShown++;
    await reload().catch(() => {});
  })();
});

follow({
  streamUrl: '/stream',
  poll: reload,
  onAvailability: (availability) => {
    // An event not shown yet belongs at the end; if more pages follow, paging will reach it.
    if (rows.has(availability.event_id) || nextCursor === null) show(availability);
  },
  onMode: (current) => {
    mode.textContent = modeText(current);
    mode.dataset.mode = current;
  },
});

const createForm = /** @type {HTMLFormElement} */ (byId('create-event'));
// The three limits are optional: left empty, the event has none.
const newLimits = limitFields('new', null);
byId('new-limits').append(...newLimits.elements);
createForm.addEventListener('submit', (submitted) => {
  void (async () => {
    submitted.preventDefault();
    const name = /** @type {HTMLInputElement} */ (byId('new-name'));
    const total = /** @type {HTMLInputElement} */ (byId('new-total'));
    const outcome = byId('create-outcome');
    const button = /** @type {HTMLButtonElement} */ (createForm.querySelector('button'));
    replace(outcome);
    const { limits, errors } = newLimits.read(Number(total.value));
    if (errors.length > 0) {
      replace(outcome, problemView(limitsRefused(errors)));
      return;
    }
    button.disabled = true;
    try {
      const event = await api('/events', {
        method: 'POST',
        admin: true,
        body: { event: { name: name.value.trim(), total_seats: Number(total.value), ...limits } },
      });
      show({ ...event, total: event.total_seats, available: event.total_seats, held: 0, booked: 0 });
      replace(
        outcome,
        h(
          'p',
          { class: 'ok', role: 'status' },
          `Created “${event.name}” (#${event.event_id}) with ${event.total_seats} seats. `,
          h('a', { href: `/console/events/${event.event_id}` }, 'Open it'),
        ),
      );
      announce(`Event ${event.name} created`);
      name.value = '';
    } catch (error) {
      replace(outcome, problemView(error));
    } finally {
      button.disabled = false;
    }
  })();
});

initSession(() => {});
