// The buyer's flow: pick an event, hold seats, watch the time left, then book, extend or
// release; or see the hold run out and its seats go back on sale. The hold's payment token is
// kept in this tab's sessionStorage so that a reload does not lose the seats, and is sent only
// in the X-Payment-Token header (or the booking body) to this origin. A buyer may give a customer
// (an email address or account id), sent as hold.customer: an event with per-customer limits
// counts the seats against it, and one that requires a customer refuses holds without. An event
// that sells through a queue has the buyer wait their turn first (waiting-room.js).
import { ApiError, api } from './api.js';
import { countdown } from './countdown.js';
import { announce, byId, clockTime, count, h, replace } from './dom.js';
import { limitsForBuyer } from './limits.js';
import { follow, modeText } from './live.js';
import { problemView } from './problems.js';
import { waitingRoom } from './waiting-room.js';

const HOLD_KEY = 'box-office.hold';
const EXTEND_SECONDS = 60;

const select = /** @type {HTMLSelectElement} */ (byId('event'));
const qty = /** @type {HTMLInputElement} */ (byId('qty'));
const customer = /** @type {HTMLInputElement} */ (byId('customer'));
const timeLeft = countdown({
  timer: byId('countdown'),
  progress: /** @type {HTMLProgressElement} */ (byId('time-left')),
  onLapse: () => void checkHold(),
});
const outcome = byId('outcome');
const actionProblem = byId('hold-action-problem');
const room = waitingRoom({
  section: byId('waiting-room'),
  button: /** @type {HTMLButtonElement} */ (byId('hold-button')),
  customer,
});
const actions = /** @type {HTMLButtonElement[]} */ (['book', 'extend', 'release'].map((id) => byId(id)));

/**
 * The hold being bought, as stored. offsetMs: server time minus this browser's, so that the
 * countdown follows the server's deadline whatever this machine's clock says.
 * @typedef {{ hold_id: number, payment_token: string, event_id: number, event_name: string, qty: number,
 *   created_at: string, expires_at: string, offsetMs: number, customer?: string | null }} HeldSeats
 */
/** @type {HeldSeats | null} */
let held = null;
let checking = false;
/** @type {ReturnType<typeof follow> | null} */
let live = null;
/** @type {Map<number, any>} */
const events = new Map();
let lastFigures = '';

const save = () =>
  held === null ? sessionStorage.removeItem(HOLD_KEY) : sessionStorage.setItem(HOLD_KEY, JSON.stringify(held));
const tokenHeader = () => ({ 'x-payment-token': /** @type {HeldSeats} */ (held).payment_token });

/** @param {any} snapshot */
function showAvailability(snapshot) {
  // Stream messages carry the seats only: the limits read with the event are kept.
  snapshot = { ...events.get(snapshot.event_id), ...snapshot };
  events.set(snapshot.event_id, snapshot);
  const option = select.querySelector(`option[value="${snapshot.event_id}"]`);
  if (option !== null) option.textContent = `${snapshot.name} (${snapshot.available} left)`;
  if (Number(select.value) !== snapshot.event_id) return;
  room.select(snapshot);
  byId('limits-note').textContent = 'customer_required' in snapshot ? (limitsForBuyer(snapshot) ?? '') : '';
  byId('availability-text').textContent =
    `${snapshot.name}: ${snapshot.available.toLocaleString('en')} of ${count(snapshot.total, 'seat')} available ` +
    `(${snapshot.held} held, ${snapshot.booked} booked).`;
  // Seats moving may mean the box office ended this hold: ask, rather than wait for the deadline.
  const figures = `${snapshot.available}/${snapshot.held}/${snapshot.booked}`;
  if (figures !== lastFigures && held !== null && lastFigures !== '') void checkHold();
  lastFigures = figures;
}

function followEvent() {
  live?.stop();
  lastFigures = '';
  const eventId = Number(select.value);
  room.select(events.get(eventId) ?? null);
  if (!eventId) return;
  live = follow({
    streamUrl: `/events/${eventId}/stream`,
    poll: async () => showAvailability(await api(`/events/${eventId}`)),
    onAvailability: showAvailability,
    onMode: (mode) => {
      const badge = byId('mode');
      badge.textContent = modeText(mode);
      badge.dataset.mode = mode;
    },
  });
}

async function loadEvents() {
  try {
    const body = await api('/events?limit=100');
    replace(select, ...body.events.map((event) => h('option', { value: event.event_id }, event.name)));
    body.events.forEach(showAvailability);
    const wanted = new URLSearchParams(location.search).get('event') ?? String(held?.event_id ?? '');
    if (events.has(Number(wanted))) select.value = wanted;
    if (body.events.length === 0) byId('availability-text').textContent = 'No events are on sale yet.';
    followEvent();
  } catch (error) {
    replace(byId('hold-problem'), problemView(error));
  }
}

/** Shows the hold card, or the form when there is no hold. */
function render() {
  byId('choose').hidden = held !== null;
  byId('hold').hidden = held === null;
  if (held === null) {
    timeLeft.stop();
    return;
  }
  byId('hold-summary').textContent =
    `Hold #${held.hold_id}: ${count(held.qty, 'seat')} for ${held.event_name}.` +
    (held.customer ? ` Customer: ${held.customer}.` : '');
  byId('deadline').textContent = `Book before ${clockTime(Date.parse(held.expires_at) - held.offsetMs)}.`;
  timeLeft.set(held.created_at, held.expires_at, held.offsetMs);
}

/** Asks the server what became of the hold: the deadline passed, or the seats moved. */
async function checkHold() {
  if (held === null || checking) return;
  checking = true;
  try {
    const hold = await api(`/holds/${held.hold_id}`, { headers: tokenHeader() });
    if (hold.status === 'active') {
      held.expires_at = hold.expires_at;
      save();
      render();
    } else if (hold.status === 'booked') {
      await showBooked(hold.booking_id);
    } else {
      finish(hold.status === 'released' ? 'released' : 'expired');
    }
  } catch (error) {
    replace(actionProblem, problemView(error));
  } finally {
    // Asked again at the next tick if the server still says active past the deadline.
    setTimeout(() => (checking = false), 500);
  }
}

/** @param {'expired' | 'released'} how */
function finish(how) {
  if (held === null) return;
  const { qty: seats, hold_id: holdId, expires_at: expiresAt, offsetMs } = held;
  const text =
    how === 'expired'
      ? `Your hold #${holdId} ran out at ${clockTime(Date.parse(expiresAt) - offsetMs)}. Its ${count(seats, 'seat')} went back on sale.`
      : `You released hold #${holdId}. Its ${count(seats, 'seat')} are back on sale.`;
  end(
    h(
      'div',
      { class: 'gone', dataset: { outcome: how } },
      h('h2', {}, how === 'expired' ? 'Your hold expired' : 'Seats released'),
      h('p', {}, text),
      again(),
    ),
  );
  announce(how === 'expired' ? 'Your hold expired' : 'Seats released');
}

/** @param {number} bookingId */
async function showBooked(bookingId) {
  if (held === null) return;
  const { qty: seats, event_name: name } = held;
  let when = '';
  try {
    const booking = await api(`/bookings/${bookingId}`, { headers: tokenHeader() });
    when = ` Booked at ${clockTime(Date.parse(booking.created_at) - held.offsetMs)}.`;
  } catch {
    // The booking stands whether or not its details could be read.
  }
  end(
    h(
      'div',
      { class: 'done', dataset: { outcome: 'booked' } },
      h('h2', {}, 'Booked!'),
      h('p', {}, `Booking #${bookingId}: ${count(seats, 'seat')} for ${name}.${when}`),
      again(),
    ),
  );
  announce(`Booked: booking number ${bookingId}`);
}

/** @param {HTMLElement} message */
function end(message) {
  held = null;
  save();
  replace(actionProblem);
  render();
  replace(outcome, message);
  void live?.refresh();
}

const again = () =>
  h(
    'button',
    { type: 'button', class: 'secondary', onclick: () => (replace(outcome), qty.focus()) },
    'Hold more seats',
  );

/**
 * Runs a hold action with its buttons disabled; shows its problem, and ends the hold when the
 * server says it is over. @param {() => Promise<void>} run
 */
async function holdAction(run) {
  actions.forEach((button) => (button.disabled = true));
  replace(actionProblem);
  try {
    await run();
  } catch (error) {
    if (error instanceof ApiError && ['hold_expired', 'hold_released', 'booking_cancelled'].includes(error.code)) {
      end(h('div', { class: 'gone' }, problemView(error), again()));
    } else {
      replace(actionProblem, problemView(error));
    }
  } finally {
    actions.forEach((button) => (button.disabled = false));
  }
}

byId('hold-form').addEventListener('submit', (submitted) => {
  void (async () => {
    submitted.preventDefault();
    const button = /** @type {HTMLButtonElement} */ (byId('hold-button'));
    button.disabled = true;
    replace(byId('hold-problem'));
    replace(outcome);
    try {
      const eventId = Number(select.value);
      const who = customer.value.trim();
      if (room.mustJoin(eventId)) {
        await room.join(eventId, who);
        return;
      }
      const sentAt = Date.now();
      const granted = await api('/holds', {
        method: 'POST',
        headers: room.headers(eventId),
        body: { hold: { event_id: eventId, qty: Number(qty.value), ...(who === '' ? {} : { customer: who }) } },
      });
      const receivedAt = Date.now();
      const hold = await api(`/holds/${granted.hold_id}`, { headers: { 'x-payment-token': granted.payment_token } });
      held = {
        hold_id: granted.hold_id,
        payment_token: granted.payment_token,
        event_id: eventId,
        event_name: events.get(eventId)?.name ?? `event #${eventId}`,
        qty: granted.qty,
        created_at: hold.created_at,
        expires_at: hold.expires_at,
        // The hold was created between sending and receiving: the midpoint is the best guess.
        offsetMs: Date.parse(hold.created_at) - (sentAt + receivedAt) / 2,
        customer: who === '' ? null : who,
      };
      save();
      render();
      announce(`${count(granted.qty, 'seat')} held until ${clockTime(Date.parse(granted.expires_at) - held.offsetMs)}`);
      byId('book').focus();
      void live?.refresh();
    } catch (error) {
      replace(byId('hold-problem'), problemView(error));
      // Where the buyer can act on the refusal: the customer, or the number of seats.
      if (error instanceof ApiError && error.code === 'customer_required') customer.focus();
      else if (error instanceof ApiError && ['customer_limit_reached', 'hold_too_large'].includes(error.code))
        qty.focus();
    } finally {
      button.disabled = room.waiting();
    }
  })();
});

byId('book').addEventListener(
  'click',
  () =>
    void holdAction(async () => {
      if (held === null) return;
      const booked = await api('/book', {
        method: 'POST',
        body: { booking: { hold_id: held.hold_id, payment_token: held.payment_token } },
      });
      await showBooked(booked.booking_id);
    }),
);

byId('extend').addEventListener(
  'click',
  () =>
    void holdAction(async () => {
      if (held === null) return;
      const hold = await api(`/holds/${held.hold_id}/extend`, {
        method: 'POST',
        headers: tokenHeader(),
        body: { seconds: EXTEND_SECONDS },
      });
      held.expires_at = hold.expires_at;
      save();
      render();
      announce(`Held until ${clockTime(Date.parse(hold.expires_at) - held.offsetMs)}`);
    }),
);

byId('release').addEventListener(
  'click',
  () =>
    void holdAction(async () => {
      if (held === null) return;
      await api(`/holds/${held.hold_id}`, { method: 'DELETE', headers: tokenHeader() });
      finish('released');
    }),
);

select.addEventListener('change', followEvent);

// A hold kept from before a reload (its clock offset still holds: same browser, same server).
const stored = sessionStorage.getItem(HOLD_KEY);
if (stored !== null) {
  held = JSON.parse(stored);
  void checkHold();
}
render();
void loadEvents();
