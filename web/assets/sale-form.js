// When an event's sale opens and whether it sells through a queue (PATCH /events/:id with
// sale_opens_at and queue). Times are typed in the browser's time zone and sent as instants. A
// queue needs an opening time and a per-customer limit; the server says so when one is missing,
// and its refusal is shown in words.
import { ApiError, api } from './api.js';
import { clockTime, count, durationText, h, replace } from './dom.js';
import { problemView } from './problems.js';

/** An instant as a datetime-local value, in this browser's time zone. @param {string | null} at */
function localInput(at) {
  if (at === null) return '';
  const date = new Date(at);
  return new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
}

/**
 * @param {{ event_id: number, name: string, sale_opens_at: string | null,
 *   queue: { admit_per_minute: number, admission_ttl_seconds: number, prequeue_opens_at: string | null } | null }} event
 * @param {(snapshot: any) => void} onSaved
 */
export function saleForm(event, onSaved) {
  const id = event.event_id;
  const input = (/** @type {string} */ name, /** @type {Record<string, unknown>} */ props) =>
    h('input', { id: `sale-${name}-${id}`, name, ...props });
  const opens = input('sale_opens_at', { type: 'datetime-local', step: 1, value: localInput(event.sale_opens_at) });
  const queued = input('queue', { type: 'checkbox', checked: event.queue !== null });
  const rate = input('admit_per_minute', {
    type: 'number',
    min: 1,
    max: 1000000,
    step: 1,
    value: event.queue?.admit_per_minute ?? 600,
  });
  const ttl = input('admission_ttl_seconds', {
    type: 'number',
    min: 60,
    max: 86400,
    step: 1,
    value: event.queue?.admission_ttl_seconds ?? 600,
  });
  const prequeue = input('prequeue_opens_at', {
    type: 'datetime-local',
    step: 1,
    value: localInput(event.queue?.prequeue_opens_at ?? null),
  });
  const field = (/** @type {HTMLInputElement} */ control, /** @type {string} */ label) =>
    h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
  const queueFields = h(
    'div',
    { class: 'limit-fields', role: 'group', 'aria-label': 'The queue' },
    field(rate, 'Admit per minute'),
    field(ttl, 'Seconds to buy once admitted'),
    field(prequeue, 'Queue opens at (empty: now)'),
  );
  const showQueueFields = () => (queueFields.hidden = !queued.checked);
  queued.addEventListener('change', showQueueFields);
  showQueueFields();

  const outcome = h('div', { class: 'outcome' });
  const save = h('button', { type: 'submit' }, 'Save sale settings');
  const form = h(
    'form',
    { class: 'event-edit', 'aria-label': `Sale opening and queue of ${event.name}` },
    field(opens, 'Sale opens at (empty: on sale now)'),
    h('div', { class: 'field check' }, queued, h('label', { for: queued.id }, 'Sell through a queue')),
    queueFields,
    save,
    outcome,
  );

  form.addEventListener('submit', (submitted) => {
    void (async () => {
      submitted.preventDefault();
      replace(outcome);
      const instant = (/** @type {HTMLInputElement} */ control) =>
        control.value === '' ? null : new Date(control.value).toISOString();
      const body = {
        sale_opens_at: instant(opens),
        queue: queued.checked
          ? {
              admit_per_minute: Number(rate.value),
              admission_ttl_seconds: Number(ttl.value),
              prequeue_opens_at: instant(prequeue),
            }
          : null,
      };
      save.disabled = true;
      try {
        const snapshot = await api(`/events/${id}`, { method: 'PATCH', admin: true, body: { event: body } });
        replace(outcome, h('p', { class: 'ok', role: 'status' }, savedText(snapshot)));
        onSaved(snapshot);
      } catch (error) {
        replace(outcome, problemView(error instanceof ApiError ? error : new ApiError(badTime(error))));
      } finally {
        save.disabled = false;
      }
    })();
  });
  return form;
}

/** @param {any} snapshot */
function savedText(snapshot) {
  const opens = snapshot.sale_opens_at === null ? 'on sale now' : `opens at ${clockTime(snapshot.sale_opens_at)}`;
  const queue =
    snapshot.queue === null
      ? 'no queue'
      : `a queue admitting ${count(snapshot.queue.admit_per_minute, 'buyer')} a minute, ` +
        `${durationText(snapshot.queue.admission_ttl_seconds)} each to buy`;
  return `Saved: ${opens}, ${queue}.`;
}

/** A time the browser could not read (toISOString of an invalid date throws). @param {unknown} error */
const badTime = (error) => ({
  title: 'Request failed validation',
  detail: `a time is not valid (${String(error)})`,
  code: 'validation_failed',
  status: 0,
});
