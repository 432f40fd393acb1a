// An event's queue on its console page: how many wait, the rate, how far admission has got
// (admitted_through), the pre-queue and the estimate for the last in line, from
// GET /events/:id/queue every 2 s while the page is visible (the figures move at every tick,
// and the change stream carries seats, not the queue). Staff change the rate (PATCH /events/:id
// with the rate alone: the other queue fields keep their values) and pause or resume admission.
// The summary is for staff: a read-only console shows the queue's settings from the event and
// says that signing in shows the rest. An event without a queue shows no panel.
import { ApiError, api } from './api.js';
import { byId, clockTime, count, durationText, h, replace } from './dom.js';
import { problemView } from './problems.js';

const POLL_MS = 2000;

/**
 * @typedef {{ admit_per_minute: number, admission_ttl_seconds: number, prequeue_opens_at: string | null }} QueueSettings
 * @typedef {{ event_id: number, sale_opens_at: string | null, queue: QueueSettings | null }} QueuedEvent
 * @typedef {{ joined: number, waiting: number, prequeue: number, admitted_through: number,
 *   admit_per_minute: number, admission_ttl_seconds: number, paused: boolean, sold_out: boolean,
 *   last_eta_seconds: number | null, sale_opens_at: string, prequeue_opens_at: string | null }} Summary
 */

/**
 * Fills #queue-panel (a section, hidden until the event has a queue).
 * @param {number} eventId
 * @param {(snapshot: any) => void} onEventSaved the event page's snapshot handler, after PATCH
 */
export function queuePanel(eventId, onEventSaved) {
  const base = `/events/${eventId}`;
  const section = byId('queue-panel');
  const figure = (/** @type {string} */ name, /** @type {string} */ label) => {
    const value = h('b', { id: `queue-${name}` }, '–');
    return { value, element: h('div', { class: 'counter' }, label, value) };
  };
  const waiting = figure('waiting', 'Waiting');
  const rate = figure('rate', 'Admitted per minute');
  const through = figure('through', 'Admitted through place');
  const prequeue = figure('prequeue', 'In the pre-queue');
  const lastEta = figure('last-eta', 'Last in line admitted in');
  const state = h('span', { id: 'queue-state', class: 'mode', role: 'status' }, '…');
  const settings = h('p', { id: 'queue-settings', class: 'muted' });
  const note = h('p', { class: 'muted' });
  const problem = h('div');
  const outcome = h('div');

  const rateInput = h('input', {
    id: 'queue-rate-input',
    type: 'number',
    min: 1,
    max: 1000000,
    step: 1,
    required: true,
  });
  const rateForm = h(
    'form',
    { class: 'inline', 'aria-label': 'Admission rate' },
    h('div', { class: 'field' }, h('label', { for: rateInput.id }, 'Admit per minute'), rateInput),
    h('button', { type: 'submit' }, 'Set rate'),
  );
  const pause = h('button', { type: 'button', class: 'danger' }, 'Pause admission');
  const resume = h('button', { type: 'button' }, 'Resume admission');

  replace(
    section,
    h('h2', { id: 'queue-heading' }, 'Queue ', state),
    settings,
    h(
      'div',
      { class: 'counters', 'aria-label': 'Queue now' },
      waiting.element,
      rate.element,
      through.element,
      prequeue.element,
      lastEta.element,
    ),
    note,
    problem,
    h('div', { class: 'admin-only queue-controls' }, rateForm, h('div', { class: 'actions' }, pause, resume)),
    outcome,
  );

  /** @type {QueuedEvent | null} */
  let event = null;
  /** @type {Summary | null} */
  let summary = null;
  let isAdmin = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let reading = false;
  /** The summary answered 401: not asked again until staff sign in. */
  let readOnly = false;

  const showSettings = () => {
    if (event?.queue == null) return;
    const { queue } = event;
    const opens = event.sale_opens_at === null ? 'no opening time set' : `opens ${dateTime(event.sale_opens_at)}`;
    const joins =
      queue.prequeue_opens_at === null ? 'joining open now' : `joining from ${dateTime(queue.prequeue_opens_at)}`;
    settings.textContent =
      `Sale ${opens}; ${joins}; ${count(queue.admit_per_minute, 'buyer')} admitted per minute, each with ` +
      `${durationText(queue.admission_ttl_seconds)} to hold seats.`;
    if (summary === null) rate.value.textContent = queue.admit_per_minute.toLocaleString('en');
    showRate(queue.admit_per_minute);
  };
  /** The rate field follows the rate in force, except while staff type a new one. @param {number} perMinute */
  const showRate = (perMinute) => {
    if (document.activeElement !== rateInput) rateInput.value = String(perMinute);
  };

  /** @param {Summary} next */
  const showSummary = (next) => {
    summary = next;
    waiting.value.textContent = next.waiting.toLocaleString('en');
    rate.value.textContent = next.admit_per_minute.toLocaleString('en');
    showRate(next.admit_per_minute);
    through.value.textContent = next.admitted_through.toLocaleString('en');
    prequeue.value.textContent = next.prequeue.toLocaleString('en');
    lastEta.value.textContent = next.last_eta_seconds === null ? '–' : durationText(next.last_eta_seconds);
    const [mode, text] = next.paused
      ? ['paused', 'Paused']
      : next.sold_out
        ? ['sold_out', 'Sold out: admission waits for seats']
        : Date.parse(next.sale_opens_at) > Date.now()
          ? ['prequeue', `Opens at ${clockTime(next.sale_opens_at)}`]
          : ['admitting', 'Admitting'];
    state.textContent = text;
    state.dataset.mode = mode;
    pause.hidden = next.paused;
    resume.hidden = !next.paused;
    note.textContent = `${count(next.joined, 'ticket')} handed out. Figures at ${clockTime(Date.now())}, every ${POLL_MS / 1000} s.`;
  };

  const read = async () => {
    if (event?.queue == null || reading) return;
    reading = true;
    try {
      showSummary(await api(`${base}/queue`, { admin: true }));
      readOnly = false;
      replace(problem);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        // Read-only: the settings above are public; the live figures are for staff.
        summary = null;
        readOnly = true;
        state.textContent = 'Figures for staff';
        state.dataset.mode = 'read-only';
        note.textContent = 'Sign in with the admin token to see how many wait and how far admission has got.';
        replace(problem);
      } else {
        replace(problem, problemView(error));
      }
    } finally {
      reading = false;
    }
  };

  const schedule = () => {
    clearTimeout(timer);
    if (event?.queue == null || readOnly || document.visibilityState !== 'visible') return;
    timer = setTimeout(() => void read().then(schedule), POLL_MS);
  };
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') void read();
    schedule();
  });

  /**
   * A staff action on the queue; its answer is shown at once, and so is a refusal, in words.
   * @param {() => Promise<any>} run @param {(result: any) => string} done
   */
  const act = async (run, done) => {
    replace(outcome);
    for (const button of section.querySelectorAll('button')) button.disabled = true;
    try {
      const result = await run();
      replace(outcome, h('p', { class: 'ok', role: 'status' }, done(result)));
    } catch (error) {
      replace(outcome, problemView(error));
    } finally {
      for (const button of section.querySelectorAll('button')) button.disabled = false;
    }
    await read();
  };

  rateForm.addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    const perMinute = Number(rateInput.value);
    void act(
      async () => {
        // The rate alone: PATCH keeps the queue's other fields as they are.
        const snapshot = await api(base, {
          method: 'PATCH',
          admin: true,
          body: { event: { queue: { admit_per_minute: perMinute } } },
        });
        onEventSaved(snapshot);
        return snapshot;
      },
      (snapshot) => `Rate set: ${count(snapshot.queue.admit_per_minute, 'buyer')} admitted per minute.`,
    );
  });
  pause.addEventListener(
    'click',
    () =>
      void act(
        () => api(`${base}/queue/pause`, { method: 'POST', admin: true }),
        () => 'Admission paused. Buyers keep their places; those already admitted keep their window.',
      ),
  );
  resume.addEventListener(
    'click',
    () =>
      void act(
        () => api(`${base}/queue/resume`, { method: 'POST', admin: true }),
        () => 'Admission resumed.',
      ),
  );

  return {
    /**
     * The event as the page knows it; a snapshot without `queue` (a stream message) changes nothing.
     * @param {any} snapshot
     */
    update(snapshot) {
      if (!('queue' in snapshot)) return;
      const had = event?.queue != null;
      event = snapshot;
      section.hidden = event?.queue == null;
      if (event?.queue == null) {
        clearTimeout(timer);
        summary = null;
        return;
      }
      showSettings();
      if (!had) void read().then(schedule);
    },
    /** @param {boolean} admin */
    setAdmin(admin) {
      if (admin === isAdmin) return;
      isAdmin = admin;
      void read().then(schedule);
    },
  };
}

/** "6 Dec, 18:05:00" in the browser's time zone. @param {string} at */
const dateTime = (at) =>
  new Date(at).toLocaleString('en-GB', {
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  });
