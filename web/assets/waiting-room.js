// The buyer's waiting room, for an event that sells through a queue: the buyer joins
// (POST /events/:id/queue with the customer they will hold as), watches their state, place and
// wait from GET /queue/:ticket/stream (Server-Sent Events; GET /queue/:ticket every 2 s while the
// stream reconnects), and once admitted holds seats with the admission token in the
// Admission-Token header, as the same customer. The ticket and its customer are kept in this
// tab's sessionStorage, so a reload keeps the place; the token comes back with the status.
import { ApiError, api } from './api.js';
import { announce, clockTime, count, durationText, h, replace } from './dom.js';
import { problemView } from './problems.js';

const POLL_MS = 2000;
/** A stream the server refused (not a dropped connection) is tried again this often. */
const STREAM_RETRY_MS = 10_000;
const KEY = (/** @type {number} */ eventId) => `box-office.queue.${eventId}`;

/**
 * @typedef {{ event_id: number, state: 'prequeue' | 'waiting' | 'paused' | 'sold_out' | 'admitted' | 'expired' | 'closed',
 *   position: number | null, ahead: number | null, eta_seconds: number | null, sale_opens_at: string | null,
 *   admission_token: string | null, admission_expires_at: string | null }} Status
 * @typedef {{ ticket: string, customer: string }} Place
 */

/**
 * @param {{ section: HTMLElement, button: HTMLButtonElement, customer: HTMLInputElement }} parts
 *   section: where the room is shown; button and customer: the hold form's, which the room relabels
 *   and, once admitted, pins to the ticket's customer.
 */
export function waitingRoom({ section, button, customer }) {
  /** The selected event, if it has a queue. @type {{ event_id: number, name: string, queue: any } | null} */
  let event = null;
  /** @type {Place | null} */
  let place = null;
  /** @type {Status | null} */
  let status = null;
  /** @type {EventSource | null} */
  let source = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pollTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let lapseTimer;
  const problem = h('div');

  const stop = () => {
    source?.close();
    source = null;
    clearTimeout(pollTimer);
    clearTimeout(retryTimer);
    clearTimeout(lapseTimer);
  };

  /** @param {Status} next */
  const show = (next) => {
    if (event === null || next.event_id !== event.event_id) return;
    const was = status?.state;
    status = next;
    if (next.state === 'admitted' || next.state === 'expired' || next.state === 'closed') {
      // Nothing more will come over the stream that the page needs: the window's end is known.
      stop();
      if (next.state === 'admitted' && next.admission_expires_at !== null) {
        const leftMs = Date.parse(next.admission_expires_at) - Date.now();
        lapseTimer = setTimeout(() => void poll(), Math.max(1000, leftMs + 1000));
      }
    }
    if (next.state === 'closed') forget();
    if (was !== next.state) announce(headline(next.state));
    render();
  };

  const poll = async () => {
    clearTimeout(pollTimer);
    if (place === null) return;
    const asked = place.ticket;
    try {
      show(await api(`/queue/${encodeURIComponent(asked)}`));
      replace(problem);
    } catch (error) {
      if (place?.ticket !== asked) return;
      if (error instanceof ApiError && error.status === 404) {
        // A ticket this service no longer knows (its key was changed): the buyer joins again.
        forget();
        render();
      }
      replace(problem, problemView(error));
    }
    const waiting = status !== null && !['admitted', 'expired', 'closed'].includes(status.state);
    if (place?.ticket === asked && waiting && source?.readyState !== EventSource.OPEN) {
      pollTimer = setTimeout(() => void poll(), POLL_MS);
    }
  };

  const follow = () => {
    stop();
    if (place === null) return;
    source = new EventSource(`/queue/${encodeURIComponent(place.ticket)}/stream`);
    source.addEventListener('open', () => clearTimeout(pollTimer));
    source.addEventListener('status', (message) => {
      show(JSON.parse(/** @type {MessageEvent<string>} */ (message).data));
      replace(problem);
    });
    source.addEventListener('error', () => {
      if (source?.readyState === EventSource.CLOSED) {
        source = null;
        retryTimer = setTimeout(follow, STREAM_RETRY_MS);
      }
      // Otherwise the EventSource reconnects by itself: the status is polled meanwhile.
      void poll();
    });
  };

  const forget = () => {
    if (event !== null) sessionStorage.removeItem(KEY(event.event_id));
    place = null;
    customer.readOnly = false;
  };

  /** The hold form's button and customer follow the room; the section tells the state. */
  const render = () => {
    button.textContent =
      event !== null && status?.state !== 'admitted' && status?.state !== 'closed' ? 'Join the queue' : 'Hold seats';
    customer.readOnly = place !== null;
    button.disabled = place !== null && status?.state !== 'admitted';
    renderSection();
  };

  const renderSection = () => {
    section.hidden = event === null;
    if (event === null) return;
    section.dataset.state = status?.state ?? 'not_joined';
    replace(
      section,
      h('h2', { id: 'waiting-heading' }, status === null ? 'This sale has a waiting room' : headline(status.state)),
      h(
        'p',
        { id: 'waiting-text' },
        status !== null ? words(status) : place === null ? intro(event) : 'Finding your place in line…',
      ),
      place !== null && status !== null && status.position !== null && status.state !== 'admitted'
        ? h(
            'dl',
            { class: 'limits', 'aria-label': 'Your place' },
            h(
              'div',
              {},
              h('dt', {}, 'Place in line'),
              h('dd', { id: 'waiting-position' }, status.position.toLocaleString('en')),
            ),
            h('div', {}, h('dt', {}, 'Ahead of you'), h('dd', { id: 'waiting-ahead' }, String(status.ahead ?? 0))),
            h(
              'div',
              {},
              h('dt', {}, 'Estimated wait'),
              h('dd', { id: 'waiting-eta' }, status.eta_seconds === null ? '–' : durationText(status.eta_seconds)),
            ),
          )
        : null,
      place === null || place.customer === '' ? null : h('p', { class: 'muted' }, `Queueing as ${place.customer}.`),
      problem,
    );
  };

  return {
    /**
     * The event the buyer picked (a snapshot with `queue`); one without a queue hides the room.
     * @param {any} snapshot
     */
    select(snapshot) {
      const next = snapshot?.queue != null ? snapshot : null;
      if (next?.event_id === event?.event_id) {
        // The same event again (a stream message): the button is left alone, so a request in
        // flight keeps it disabled.
        event = next;
        renderSection();
        return;
      }
      stop();
      event = next;
      status = null;
      place = null;
      if (event !== null) {
        const stored = sessionStorage.getItem(KEY(event.event_id));
        place = stored === null ? null : JSON.parse(stored);
        if (place !== null) customer.value = place.customer;
      }
      replace(problem);
      render();
      if (place !== null) {
        void poll();
        follow();
      }
    },
    /** Whether holding seats for this event needs a turn in the queue first. @param {number} eventId */
    mustJoin: (eventId) => event?.event_id === eventId && status?.state !== 'admitted' && status?.state !== 'closed',
    /** Whether the hold button waits for the buyer's turn. */
    waiting: () => place !== null && status?.state !== 'admitted' && status?.state !== 'closed',
    /**
     * Joins the selected event's queue as `who` ('' for no customer), or shows the place already held.
     * @param {number} eventId @param {string} who
     */
    async join(eventId, who) {
      if (event?.event_id !== eventId || place !== null) return;
      const joined = await api(`/events/${eventId}/queue`, {
        method: 'POST',
        body: who === '' ? {} : { customer: who },
      });
      place = { ticket: joined.ticket, customer: who };
      sessionStorage.setItem(KEY(eventId), JSON.stringify(place));
      const { ticket: _ticket, ...first } = joined;
      show(first);
      if (status?.state !== 'admitted') follow();
    },
    /** The Admission-Token header for a hold on this event, if the buyer's turn has come. @param {number} eventId */
    headers: (eventId) => {
      /** @type {Record<string, string>} */
      const headers = {};
      if (event?.event_id === eventId && status?.state === 'admitted' && status.admission_token !== null)
        headers['admission-token'] = status.admission_token;
      return headers;
    },
  };
}

/** @param {Status['state'] | undefined} state */
function headline(state) {
  switch (state) {
    case 'prequeue':
      return "You're in the waiting room";
    case 'waiting':
    case undefined:
      return "You're in the queue";
    case 'admitted':
      return "It's your turn";
    case 'paused':
      return 'The queue is paused';
    case 'sold_out':
      return 'Sold out for now';
    case 'expired':
      return 'Your turn has passed';
    case 'closed':
      return 'The queue has closed';
  }
}

/** @param {{ name: string, queue: { admission_ttl_seconds: number } }} event */
const intro = (event) =>
  `${event.name} sells through a queue. Enter your email or account id and join it; when your turn ` +
  `comes you have ${durationText(event.queue.admission_ttl_seconds)} to hold seats, as the same customer.`;

/** The buyer's state in words. @param {Status} s */
function words(s) {
  const place = s.position === null ? '' : `You are number ${s.position.toLocaleString('en')} in line`;
  const ahead = s.ahead === null ? '' : `, with ${count(s.ahead, 'person', 'people')} ahead of you`;
  switch (s.state) {
    case 'prequeue':
      return (
        `The sale opens at ${s.sale_opens_at === null ? 'its start' : clockTime(s.sale_opens_at)}. Then everyone ` +
        'waiting here is given a place in line at random; people who come later join the back. Keep this page open.'
      );
    case 'waiting':
      return `${place}${ahead}. ${s.eta_seconds === null ? '' : `About ${durationText(s.eta_seconds)} to wait. `}Keep this page open.`;
    case 'paused':
      return `The box office has paused admission for a moment. You keep your place. ${place}${ahead}.`;
    case 'sold_out':
      return `Every seat is held or booked right now. You keep your place: if seats come back, the line moves again. ${place}.`;
    case 'admitted':
      return (
        'Hold your seats now' +
        (s.admission_expires_at === null ? '.' : `, before ${clockTime(s.admission_expires_at)}.`) +
        ' After that your turn passes to the next in line.'
      );
    case 'expired':
      return `Your time to hold seats ended${s.admission_expires_at === null ? '' : ` at ${clockTime(s.admission_expires_at)}`}.`;
    case 'closed':
      return 'This event no longer sells through a queue: hold seats as usual.';
  }
}
