// An event's per-customer limits: shown in words, and set by staff (POST /events, PATCH
// /events/:id). A seat limit is a whole number from 1 to the event's total seats, or empty for
// no limit; the form checks that before sending, as the server does, and shows the server's
// problem detail if it refuses anyway.
import { ApiError, api } from './api.js';
import { count, h, replace } from './dom.js';
import { problemView } from './problems.js';

/**
 * @typedef {{ max_seats_per_customer: number | null, max_seats_per_hold: number | null,
 *   customer_required: boolean }} Limits
 */

/** The three limits as short phrases, in the order the page lists them. @param {Limits} event */
export function limitsText(event) {
  return {
    perCustomer: event.max_seats_per_customer === null ? 'No limit' : count(event.max_seats_per_customer, 'seat'),
    perHold: event.max_seats_per_hold === null ? 'No limit' : count(event.max_seats_per_hold, 'seat'),
    customer: event.customer_required ? 'Required on every hold' : 'Optional',
  };
}

/** What a buyer is told before holding: null when the event has no limits. @param {Limits} event */
export function limitsForBuyer(event) {
  const parts = [];
  if (event.max_seats_per_customer !== null)
    parts.push(`at most ${count(event.max_seats_per_customer, 'seat')} per customer`);
  if (event.max_seats_per_hold !== null) parts.push(`at most ${count(event.max_seats_per_hold, 'seat')} per hold`);
  const seats = parts.length === 0 ? '' : `${parts.join(', ')}.`;
  const customer = event.customer_required ? 'Enter your email address or account id to hold seats.' : '';
  const text = [seats && `This event sells ${seats}`, customer].filter(Boolean).join(' ');
  return text === '' ? null : text;
}

/**
 * The three fields, for a form whose ids start with `prefix`; `read(total)` gives the limits
 * to send, or the reasons the server would refuse them.
 * @param {string} prefix @param {Limits | null} event the values to start from; null: none set
 */
export function limitFields(prefix, event) {
  const number = (name, value) =>
    h('input', {
      id: `${prefix}-${name}`,
      name,
      type: 'number',
      min: 1,
      max: 1000000,
      step: 1,
      placeholder: 'No limit',
      value: value ?? undefined,
    });
  const perCustomer = number('max_seats_per_customer', event?.max_seats_per_customer);
  const perHold = number('max_seats_per_hold', event?.max_seats_per_hold);
  const required = h('input', {
    id: `${prefix}-customer_required`,
    name: 'customer_required',
    type: 'checkbox',
    checked: event?.customer_required === true,
  });
  const elements = [
    h('div', { class: 'field' }, h('label', { for: perCustomer.id }, 'Seats per customer'), perCustomer),
    h('div', { class: 'field' }, h('label', { for: perHold.id }, 'Seats per hold'), perHold),
    h('div', { class: 'field check' }, required, h('label', { for: required.id }, 'Customer required')),
  ];
  /**
   * @param {number} total the event's total seats, which a limit may not exceed
   * @returns {{ limits: Limits, errors: Array<{ path: string, message: string }> }}
   */
  const read = (total) => {
    /** @type {Array<{ path: string, message: string }>} */
    const errors = [];
    /** @param {HTMLInputElement} input @returns {number | null} */
    const limit = (input) => {
      const text = input.value.trim();
      if (text === '' && !input.validity.badInput) return null;
      const value = Number(text);
      const path = `event/${input.name}`;
      if (text === '' || !Number.isInteger(value))
        errors.push({ path, message: 'must be a whole number, or empty for no limit' });
      else if (value < 1) errors.push({ path, message: 'must be at least 1, or empty for no limit' });
      else if (value > total) errors.push({ path, message: `must be at most total_seats (${total})` });
      return value;
    };
    return {
      limits: {
        max_seats_per_customer: limit(perCustomer),
        max_seats_per_hold: limit(perHold),
        customer_required: required.checked,
      },
      errors,
    };
  };
  return { elements, read };
}

/** The problem shown for limits refused before sending, worded as the server's. @param {Array<{ path: string, message: string }>} errors */
export const limitsRefused = (errors) =>
  new ApiError({
    title: 'Request failed validation',
    detail: 'a limit is not valid',
    code: 'validation_failed',
    status: 0,
    errors,
  });

/**
 * The event page's form for the limits (PATCH /events/:id with the three fields only).
 * @param {Limits & { event_id: number, name: string, total: number }} event
 * @param {(snapshot: any) => void} onSaved
 */
export function eventLimitsForm(event, onSaved) {
  const id = event.event_id;
  const fields = limitFields(`limits-${id}`, event);
  const outcome = h('div', { class: 'outcome' });
  const save = h('button', { type: 'submit' }, 'Save limits');
  const form = h(
    'form',
    { class: 'event-edit', 'aria-label': `Limits of ${event.name}` },
    ...fields.elements,
    save,
    outcome,
  );
  form.addEventListener('submit', (submitted) => {
    void (async () => {
      submitted.preventDefault();
      replace(outcome);
      const { limits, errors } = fields.read(event.total);
      if (errors.length > 0) {
        replace(outcome, problemView(limitsRefused(errors)));
        return;
      }
      save.disabled = true;
      try {
        const snapshot = await api(`/events/${id}`, { method: 'PATCH', admin: true, body: { event: limits } });
        const text = limitsText(snapshot);
        replace(
          outcome,
          h(
            'p',
            { class: 'ok', role: 'status' },
            `Limits saved: ${text.perCustomer.toLowerCase()} per customer, ${text.perHold.toLowerCase()} per hold, ` +
              `customer ${snapshot.customer_required ? 'required' : 'optional'}.`,
          ),
        );
        onSaved(snapshot);
      } catch (error) {
        replace(outcome, problemView(error));
      } finally {
        save.disabled = false;
      }
    })();
  });
  return form;
}
