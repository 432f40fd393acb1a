// An event's seats as one bar: booked, held and available side by side, with the figures in
// words beside it (colour is never the only way the numbers are told).
import { count, h } from './dom.js';

/** @typedef {{ total: number, available: number, held: number, booked: number }} Seats */

export function availabilityBar() {
  const booked = h('span', { class: 'seg seg-booked' });
  const held = h('span', { class: 'seg seg-held' });
  const available = h('span', { class: 'seg seg-available' });
  const bar = h('div', { class: 'bar', role: 'img' }, booked, held, available);
  const legend = h('p', { class: 'legend' });
  const element = h('div', { class: 'availability' }, bar, legend);

  /** @param {Seats} seats */
  const update = (seats) => {
    const share = (n) => `${seats.total === 0 ? 0 : (100 * n) / seats.total}%`;
    booked.style.width = share(seats.booked);
    held.style.width = share(seats.held);
    available.style.width = share(seats.available);
    const words =
      `${seats.available.toLocaleString('en')} available, ${seats.held.toLocaleString('en')} held, ` +
      `${seats.booked.toLocaleString('en')} booked of ${count(seats.total, 'seat')}`;
    bar.setAttribute('aria-label', words);
    legend.replaceChildren(
      h('span', { class: 'key key-available' }, `${seats.available.toLocaleString('en')} available`),
      h('span', { class: 'key key-held' }, `${seats.held.toLocaleString('en')} held`),
      h('span', { class: 'key key-booked' }, `${seats.booked.toLocaleString('en')} booked`),
      h('span', { class: 'key' }, `of ${count(seats.total, 'seat')}`),
    );
    Object.assign(element.dataset, {
      available: String(seats.available),
      held: String(seats.held),
      booked: String(seats.booked),
      total: String(seats.total),
    });
  };
  return { element, update };
}
