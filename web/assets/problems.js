// problem+json answers in words for a person: the server's title and detail, and what to do
// next, worked out from the members the server adds (available, minimum_total_seats, …).
import { ApiError } from './api.js';
import { clockTime, count, h } from './dom.js';

/**
 * What to do about a problem, from its code and members; null when the detail says it all.
 * @param {import('./api.js').Problem} problem
 * @returns {string | null}
 */
function advice(problem) {
  const n = (name) => Number(problem[name]);
  switch (problem.code) {
    case 'insufficient_seats':
      return n('available') === 0
        ? 'Every seat is held or booked right now. Held seats come back when their holds expire, so try again shortly.'
        : `${count(n('available'), 'seat is', 'seats are')} left: ask for ${n('available')} or fewer.`;
    case 'seats_in_use':
      return (
        `${count(n('held'), 'seat is', 'seats are')} held and ${n('booked')} booked, so the event needs at least ` +
        `${count(n('minimum_total_seats'), 'seat')}. Wait for holds to end, or cancel bookings first.`
      );
    case 'customer_limit_reached': {
      const left = n('limit') - n('in_use');
      return left <= 0
        ? `All ${count(n('limit'), 'seat')} one customer may have for this event are already held or booked. ` +
            'Seats on hold count until they are booked, released or expire.'
        : `${count(n('in_use'), 'seat is', 'seats are')} already held or booked for this customer, of the ` +
            `${n('limit')} allowed: ask for ${left} or fewer.`;
    }
    case 'hold_too_large':
      return `One hold of this event may take at most ${count(n('limit'), 'seat')}: ask for ${n('limit')} or fewer.`;
    case 'customer_required':
      return 'Enter your email address or account id as the customer, then hold the seats again.';
    case 'hold_lifetime_exceeded':
      return `This hold cannot last past ${clockTime(String(problem.max_expires_at))}. Book before then.`;
    case 'hold_expired':
      return 'Its seats went back on sale. Hold seats again to continue.';
    case 'booking_cancelled':
      return `Booking #${n('booking_id')} for this hold was cancelled by the box office. Hold seats again to book.`;
    case 'admission_required':
      return 'Join the queue for this event and hold seats when your turn comes.';
    case 'admission_invalid':
      return 'Hold seats as the customer you joined the queue with, for the event you queued for.';
    case 'admission_expired':
      return 'Your turn to hold seats has passed.';
    case 'queue_not_open':
      return typeof problem.prequeue_opens_at === 'string'
        ? `The queue opens at ${clockTime(problem.prequeue_opens_at)}. Come back then.`
        : 'Come back when the queue opens.';
    case 'unauthorized':
      return 'Sign in with the admin token at the top of the page.';
    case 'rate_limited':
      return 'Wait a few seconds, then try again.';
    case 'outcome_unknown':
      return 'It may or may not have gone through. Trying again is safe: it will not happen twice.';
    case 'database_unavailable':
    case 'service_unavailable':
    case 'overloaded':
      return 'Nothing was changed. Try again in a moment.';
    case 'internal_error':
      return `Nothing you did caused this. If it goes on, quote reference ${String(problem.request_id)}.`;
    default:
      return null;
  }
}

/**
 * An alert describing what went wrong, for any error a page action can throw.
 * @param {unknown} error
 */
export function problemView(error) {
  const problem =
    error instanceof ApiError
      ? error.problem
      : { title: 'Something went wrong in this page', detail: String(error), code: 'page_error', status: 0 };
  const fields = (problem.errors ?? []).map((issue) =>
    h('li', {}, `${issue.path.replace(/^(body|querystring|params)\/?/, '').replaceAll('/', ' › ')}: ${issue.message}`),
  );
  const next = advice(problem);
  return h(
    'div',
    { class: 'problem', role: 'alert', dataset: { code: problem.code } },
    h('strong', { class: 'problem-title' }, problem.title),
    fields.length > 0 ? h('ul', {}, ...fields) : h('p', { class: 'problem-detail' }, capitalised(problem.detail)),
    next === null ? null : h('p', { class: 'problem-advice' }, next),
  );
}

/** A sentence of the server's detail; a field name that starts it keeps its case. @param {string} text */
function capitalised(text) {
  const sentence = /[.!?]$/.test(text) ? text : `${text}.`;
  return /^[a-z]+\b(?!_)/.test(sentence) ? `${sentence[0]?.toUpperCase()}${sentence.slice(1)}` : sentence;
}
