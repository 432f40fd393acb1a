// Rename or resize an event (PATCH /events/:id). A resize below the seats held and booked is
// refused with 409 seats_in_use, shown with the figures that explain it.
import { api } from './api.js';
import { h, replace } from './dom.js';
import { problemView } from './problems.js';

/**
 * @param {{ event_id: number, name: string, total: number }} event
 * @param {(snapshot: any) => void} onSaved
 */
export function eventEditForm(event, onSaved) {
  const id = event.event_id;
  const name = h('input', { id: `name-${id}`, name: 'name', required: true, maxlength: 200, value: event.name });
  const total = h('input', {
    id: `total-${id}`,
    name: 'total_seats',
    type: 'number',
    min: 1,
    max: 1000000,
    required: true,
    value: event.total,
  });
  const outcome = h('div', { class: 'outcome' });
  const save = h('button', { type: 'submit' }, 'Save changes');
  const form = h(
    'form',
    { class: 'event-edit', 'aria-label': `Rename or resize ${event.name}` },
    h('div', { class: 'field' }, h('label', { for: name.id }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: total.id }, 'Total seats'), total),
    save,
    outcome,
  );
  form.addEventListener('submit', (submitted) => {
    void (async () => {
      submitted.preventDefault();
      save.disabled = true;
      replace(outcome);
      try {
        const snapshot = await api(`/events/${id}`, {
          method: 'PATCH',
          admin: true,
          body: { event: { name: name.value.trim(), total_seats: Number(total.value) } },
        });
        replace(
          outcome,
          h('p', { class: 'ok', role: 'status' }, `Saved: “${snapshot.name}”, ${snapshot.total} seats.`),
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
