// The operator console's page for one event: live counters and bar, holds and bookings per
// second, recent activity, the event's per-customer limits (staff set them here), and the staff
// listings with their actions (expire a hold, cancel a booking), a filter by customer with that
// customer's seats against the limit, the CSV export, and for a queued event the queue panel
// (queue-panel.js) and the sale's opening and queue (sale-form.js).
import { ApiError, adminToken, api } from './api.js';
import { Activity, rateChart, renderRecent } from './activity.js';
import { availabilityBar } from './bar.js';
import { byId, clockTime, count, h, replace } from './dom.js';
import { eventEditForm } from './event-form.js';
import { eventLimitsForm, limitsText } from './limits.js';
import { listingTable } from './listing-table.js';
import { follow, modeText } from './live.js';
import { problemView } from './problems.js';
import { queuePanel } from './queue-panel.js';
import { saleForm } from './sale-form.js';
import { initSession } from './session.js';
import { waitlistPanel } from './waitlist-panel.js';

const eventId = Number(/^\/console\/events\/(\d+)/.exec(location.pathname)?.[1]);
const base = `/events/${eventId}`;
const bar = availabilityBar();
byId('event-bar').append(bar.element);
/** @type {HTMLAnchorElement} */ (byId('buy-link')).href = `/buy?event=${eventId}`;

const queue = queuePanel(eventId, (snapshot) => showSnapshot(snapshot));
const activity = new Activity();
const drawChart = rateChart(byId('rate-chart'));
let isAdmin = false;
/** @type {any} */
let current = null;
/** Where the change feed was read up to; null until the stream gives a position. @type {string | null} */
let feedPosition = null;
let feedMissing = false;
let streaming = false;
/** The customer whose holds and bookings alone are listed; null: everyone's. @type {string | null} */
let onlyCustomer = null;

/** @param {any} snapshot */
function showSnapshot(snapshot) {
  current = { ...current, ...snapshot };
  document.title = `${current.name} · Box office console`;
  byId('event-name').textContent = `#${eventId} ${current.name}`;
  for (const name of ['available', 'held', 'booked', 'total']) {
    byId(`count-${name}`).textContent = Number(current[name]).toLocaleString('en');
  }
  bar.update(current);
  // Stream messages carry the seats only; the limits come with GET /events/:id and PATCH.
  if ('customer_required' in current) {
    const text = limitsText(current);
    byId('limit-per-customer').textContent = text.perCustomer;
    byId('limit-per-hold').textContent = text.perHold;
    byId('limit-customer').textContent = text.customer;
  }
  queue.update(current);
  byId('event-body').hidden = false;
}

const drawActivity = () => {
  renderRecent(byId('recent'), activity.recent());
  drawChart(activity.perSecond());
};

/** The newest holds and bookings, when the change feed is not there to tell them. */
async function activityFromListings() {
  if (!isAdmin) return;
  const [holds, bookings] = await Promise.all([
    api(`${base}/holds?order=desc&limit=100`, { admin: true }),
    api(`${base}/bookings?order=desc&limit=100`, { admin: true }),
  ]);
  activity.addListings(holds.holds, bookings.bookings);
}

/** Reads the change feed from where it was left, a bounded number of pages at a time. */
async function activityFromFeed() {
  if (feedPosition === null || feedMissing) return;
  for (let page = 0; page < 10; page++) {
    let body;
    try {
      body = await api(`${base}/changes?after=${encodeURIComponent(String(feedPosition))}&limit=100`, { admin: true });
    } catch (error) {
      // A server with the stream but not this route: the listings tell the activity instead.
      if (error instanceof ApiError && (error.status === 404 || error.status === 401)) feedMissing = true;
      return;
    }
    activity.addChanges(body.changes);
    const last = body.changes[body.changes.length - 1];
    feedPosition = body.next_cursor ?? last?.position ?? feedPosition;
    if (body.next_cursor === null) return;
  }
}

const holds = listingTable({
  prefix: 'holds',
  path: `${base}/holds`,
  key: 'holds',
  customer: () => onlyCustomer,
  cells: (hold) => [
    `#${hold.hold_id}`,
    String(hold.qty),
    hold.status,
    clockTime(hold.created_at),
    clockTime(hold.expires_at),
    hold.booking_id === null ? '' : `#${hold.booking_id}`,
    customerCell(hold.customer),
  ],
  action: (hold) =>
    hold.status !== 'active'
      ? null
      : h(
          'button',
          {
            type: 'button',
            class: 'danger',
            'aria-label': `Expire now: hold #${hold.hold_id}`,
            onclick: () =>
              act(
                `Expire hold #${hold.hold_id} now? Its ${count(hold.qty, 'seat')} go back on sale.`,
                () => api(`/admin/holds/${hold.hold_id}/expire`, { method: 'POST', admin: true }),
                `Hold #${hold.hold_id} expired: ${count(hold.qty, 'seat')} back on sale.`,
              ),
          },
          'Expire now',
        ),
});

const bookings = listingTable({
  prefix: 'bookings',
  path: `${base}/bookings`,
  key: 'bookings',
  customer: () => onlyCustomer,
  cells: (booking) => [
    `#${booking.booking_id}`,
    `#${booking.hold_id}`,
    String(booking.qty),
    booking.status,
    clockTime(booking.created_at),
    booking.cancelled_at === null ? '' : clockTime(booking.cancelled_at),
    customerCell(booking.customer),
  ],
  action: (booking) =>
    booking.status !== 'confirmed'
      ? null
      : h(
          'button',
          {
            type: 'button',
            class: 'danger',
            'aria-label': `Cancel booking #${booking.booking_id}`,
            onclick: () =>
              act(
                `Cancel booking #${booking.booking_id}? Its ${count(booking.qty, 'seat')} go back on sale.`,
                () => api(`/bookings/${booking.booking_id}/cancel`, { method: 'POST', admin: true }),
                `Booking #${booking.booking_id} cancelled: ${count(booking.qty, 'seat')} back on sale.`,
              ),
          },
          'Cancel booking',
        ),
});

/**
 * Who a hold or booking is for: a button that lists that customer alone, or a dash for none.
 * @param {string | null} customer
 */
function customerCell(customer) {
  if (customer === null) return h('span', { class: 'muted' }, '–');
  return h(
    'button',
    {
      type: 'button',
      class: 'link',
      'aria-label': `Only customer ${customer}`,
      onclick: () => void showCustomer(customer),
    },
    customer,
  );
}

const customerInput = /** @type {HTMLInputElement} */ (byId('customer'));

/** Lists one customer's holds and bookings alone, with their seats against the limit; null: everyone's. @param {string | null} customer */
async function showCustomer(customer) {
  onlyCustomer = customer;
  customerInput.value = customer ?? '';
  replace(byId('customer-summary'));
  replace(byId('customer-problem'));
  await Promise.all([holds.reset(), bookings.reset(), lookUpCustomer()]);
}

/** GET /events/:id/customers/:customer, in words. */
async function lookUpCustomer() {
  if (onlyCustomer === null) return;
  const asked = onlyCustomer;
  try {
    const seats = await api(`${base}/customers/${encodeURIComponent(asked)}`, { admin: true });
    if (asked !== onlyCustomer) return;
    const limit =
      seats.limit === null
        ? 'no limit per customer'
        : `at most ${count(seats.limit, 'seat')} per customer, ${Math.max(0, seats.limit - seats.held - seats.booked)} left`;
    byId('customer-summary').textContent =
      `${seats.customer}: ${count(seats.held, 'seat')} held, ${seats.booked} booked; ${limit}.`;
    replace(byId('customer-problem'));
  } catch (error) {
    if (asked !== onlyCustomer) return;
    replace(byId('customer-summary'));
    replace(byId('customer-problem'), problemView(error));
  }
}

byId('customer-filter').addEventListener('submit', (submitted) => {
  submitted.preventDefault();
  // Sent as typed (an account id is compared exactly); blank lists everyone.
  void showCustomer(customerInput.value.trim() === '' ? null : customerInput.value);
});
byId('customer-clear').addEventListener('click', () => void showCustomer(null));

/**
 * A staff action, confirmed first; the figures and tables are read again after it.
 * @param {string} question @param {() => Promise<unknown>} run @param {string} done
 */
async function act(question, run, done) {
  if (!confirm(question)) return;
  const outcome = byId('action-outcome');
  replace(outcome);
  try {
    await run();
    // #action-outcome is a status region: screen readers announce it.
    replace(outcome, h('span', { class: 'ok' }, done));
  } catch (error) {
    replace(outcome, problemView(error));
  }
  await refreshAll();
}

/** Figures, activity and tables, read now. */
async function refreshAll() {
  await live.refresh();
  if (live.isLive()) await activityFromFeed();
  await refreshListings();
}

async function refreshListings() {
  if (!isAdmin) return;
  await Promise.all([holds.refresh(), bookings.refresh(), lookUpCustomer(), waitlist.refresh()]);
  if (!live.isLive() || feedMissing) await activityFromListings().catch(() => {});
  drawActivity();
}

const waitlist = waitlistPanel(byId('waitlist-panel'), eventId, refreshAll);

/** Fetches run one at a time: a stream message arriving mid-read waits for the next round. */
let feedRound = Promise.resolve();
const live = follow({
  streamUrl: `${base}/stream`,
  poll: async () => {
    try {
      showSnapshot(await api(base));
      replace(byId('event-problem'));
    } catch (error) {
      replace(byId('event-problem'), problemView(error));
      if (error instanceof ApiError && error.status === 404) byId('event-name').textContent = `No event #${eventId}`;
      throw error;
    }
    if (!live.isLive()) await refreshListings();
  },
  onAvailability: (availability) => {
    showSnapshot(availability);
    if (feedPosition === null) {
      feedPosition = availability.position ?? null;
      return;
    }
    feedRound = feedRound.then(async () => {
      await activityFromFeed();
      await refreshListings();
    });
  },
  onMode: (mode) => {
    const badge = byId('mode');
    badge.textContent = modeText(mode);
    badge.dataset.mode = mode;
    streaming = mode === 'live';
    noteActivity();
  },
});

/** Without the feed, recent activity comes from the staff listings, which need the token. */
function noteActivity() {
  byId('activity-note').textContent =
    isAdmin || (streaming && !feedMissing)
      ? ''
      : 'Sign in with the admin token to see holds and bookings as they happen.';
}

// The chart's time axis moves on even when nothing happens.
setInterval(drawActivity, 1000);

const csv = /** @type {HTMLAnchorElement} */ (byId('bookings-csv'));
csv.href = `${base}/bookings.csv`;
csv.addEventListener('click', (clicked) => {
  void (async () => {
    // A plain link cannot send the bearer token: with one, download through fetch instead.
    const token = adminToken.get();
    if (token === null) return;
    clicked.preventDefault();
    const response = await fetch(csv.href, { headers: { authorization: `Bearer ${token}` } });
    if (!response.ok) {
      replace(byId('bookings-problem'), problemView(new ApiError(await response.json())));
      return;
    }
    const link = h('a', {
      href: URL.createObjectURL(await response.blob()),
      download: `event-${eventId}-bookings.csv`,
    });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  })();
});

const editor = /** @type {HTMLDetailsElement} */ (byId('edit-event'));
editor.addEventListener('toggle', () => {
  if (!editor.open || current === null) return;
  editor.querySelector('form')?.remove();
  editor.append(eventEditForm(current, showSnapshot));
});

const limitsEditor = /** @type {HTMLDetailsElement} */ (byId('edit-limits'));
limitsEditor.addEventListener('toggle', () => {
  if (!limitsEditor.open || current === null) return;
  limitsEditor.querySelector('form')?.remove();
  limitsEditor.append(eventLimitsForm(current, showSnapshot));
});

const saleEditor = /** @type {HTMLDetailsElement} */ (byId('edit-sale'));
saleEditor.addEventListener('toggle', () => {
  if (!saleEditor.open || current === null) return;
  saleEditor.querySelector('form')?.remove();
  saleEditor.append(saleForm(current, showSnapshot));
});

initSession((admin) => {
  isAdmin = admin;
  queue.setAdmin(admin);
  noteActivity();
  // The recent list starts from the newest holds and bookings; the feed, if any, adds to it.
  if (admin)
    void Promise.all([holds.load(), bookings.load(), activityFromListings().catch(() => {})]).then(drawActivity);
});
