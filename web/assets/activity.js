// An event's recent activity: the latest holds and bookings as a list, and how many of each
// per second over the last minutes as a chart. Fed by the change feed when the server has one
// (GET /events/:id/changes), else rebuilt from the newest pages of the staff listings.
import { clockTime, count, h, replace } from './dom.js';
import { serverNow } from './api.js';

export const WINDOW_SECONDS = 180;
const LIST_LENGTH = 30;
const SVG = 'http://www.w3.org/2000/svg';

/** @typedef {{ key: string, at: number, kind: string, text: string }} Item */

/** Words for one change of the feed. @param {any} change */
function changeText(change) {
  const seats = change.qty === null ? '' : ` · ${count(change.qty, 'seat')}`;
  switch (change.type) {
    case 'hold.granted':
      return `Hold #${change.hold_id} granted${seats}`;
    case 'hold.extended':
      return `Hold #${change.hold_id} extended`;
    case 'hold.released':
      return `Hold #${change.hold_id} released${seats} back`;
    case 'hold.expired':
      return `Hold #${change.hold_id} expired${seats} back`;
    case 'booking.created':
      return `Booking #${change.booking_id}${seats} (hold #${change.hold_id})`;
    case 'booking.cancelled':
      return `Booking #${change.booking_id} cancelled${seats} back`;
    case 'event.created':
      return 'Event created';
    case 'event.updated':
      return 'Event renamed or resized';
    default:
      return String(change.type);
  }
}

export class Activity {
  constructor() {
    /** @type {Map<string, Item>} */
    this.items = new Map();
  }

  /** Changes from the feed, oldest first. @param {any[]} changes */
  addChanges(changes) {
    for (const change of changes) {
      const id = change.booking_id ?? change.hold_id ?? change.position;
      const kind = change.type === 'hold.granted' ? 'hold' : change.type === 'booking.created' ? 'booking' : 'other';
      this.add({ key: `${change.type}:${id}`, at: Date.parse(change.at), kind, text: changeText(change) });
    }
  }

  /** The newest holds and bookings from the listings, as the feed would have told them. */
  addListings(holds, bookings) {
    for (const hold of holds) {
      this.add({
        key: `hold.granted:${hold.hold_id}`,
        at: Date.parse(hold.created_at),
        kind: 'hold',
        text: `Hold #${hold.hold_id} · ${count(hold.qty, 'seat')} · ${hold.status}`,
      });
    }
    for (const booking of bookings) {
      this.add({
        key: `booking.created:${booking.booking_id}`,
        at: Date.parse(booking.created_at),
        kind: 'booking',
        text: `Booking #${booking.booking_id} · ${count(booking.qty, 'seat')} · ${booking.status}`,
      });
    }
  }

  /** @param {Item} item */
  add(item) {
    this.items.set(item.key, item); // a listing's later status replaces the earlier words
  }

  /** Newest first. */
  recent() {
    const items = [...this.items.values()].sort((a, b) => b.at - a.at);
    // Forget what neither the list nor the chart shows any more.
    const horizon = serverNow() - WINDOW_SECONDS * 1000;
    for (const item of items.slice(LIST_LENGTH)) if (item.at < horizon) this.items.delete(item.key);
    return items.slice(0, LIST_LENGTH);
  }

  /** Holds and bookings per second over the window, oldest second first. */
  perSecond() {
    const now = Math.floor(serverNow() / 1000);
    const holds = new Array(WINDOW_SECONDS).fill(0);
    const bookings = new Array(WINDOW_SECONDS).fill(0);
    for (const item of this.items.values()) {
      const slot = WINDOW_SECONDS - 1 - (now - Math.floor(item.at / 1000));
      if (slot < 0 || slot >= WINDOW_SECONDS) continue;
      if (item.kind === 'hold') holds[slot]++;
      if (item.kind === 'booking') bookings[slot]++;
    }
    return { holds, bookings };
  }
}

/** @param {string} tag @param {Record<string, string | number>} attributes */
function svg(tag, attributes) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/** The per-second chart; render() redraws it. @param {HTMLElement} figure a <figure> with a <figcaption> */
export function rateChart(figure) {
  const width = WINDOW_SECONDS * 4;
  const height = 120;
  const drawing = svg('svg', { viewBox: `0 0 ${width} ${height + 16}`, role: 'img', class: 'chart' });
  const summary = h('p', { class: 'chart-summary' });
  figure.append(drawing, summary);
  drawing.setAttribute('aria-describedby', (summary.id = `${figure.id}-summary`));

  /** @param {{ holds: number[], bookings: number[] }} rates */
  return (rates) => {
    const peak = Math.max(1, ...rates.holds, ...rates.bookings);
    const bars = [];
    rates.holds.forEach((n, i) => {
      if (n > 0)
        bars.push(
          svg('rect', {
            class: 'rate-holds',
            x: i * 4,
            y: height - (height * n) / peak,
            width: 2,
            height: (height * n) / peak,
          }),
        );
    });
    rates.bookings.forEach((n, i) => {
      if (n > 0)
        bars.push(
          svg('rect', {
            class: 'rate-bookings',
            x: i * 4 + 2,
            y: height - (height * n) / peak,
            width: 2,
            height: (height * n) / peak,
          }),
        );
    });
    const labels = [3, 2, 1, 0].map((minutes) => {
      const label = svg('text', {
        x: width - minutes * 240,
        y: height + 13,
        class: 'axis',
        'text-anchor': minutes === 0 ? 'end' : minutes === 3 ? 'start' : 'middle',
      });
      label.textContent = minutes === 0 ? 'now' : `−${minutes} min`;
      return label;
    });
    const peakLabel = svg('text', { x: 2, y: 10, class: 'axis' });
    peakLabel.textContent = `${peak}/s`;
    drawing.replaceChildren(
      svg('line', { x1: 0, x2: width, y1: height, y2: height, class: 'baseline' }),
      ...bars,
      ...labels,
      peakLabel,
    );
    const holds = rates.holds.reduce((a, b) => a + b, 0);
    const bookings = rates.bookings.reduce((a, b) => a + b, 0);
    summary.textContent =
      `Last ${WINDOW_SECONDS / 60} minutes: ${count(holds, 'hold')} and ${count(bookings, 'booking')}; ` +
      `busiest second ${count(peak === 1 && holds + bookings === 0 ? 0 : peak, 'request')}.`;
  };
}

/** Renders the recent items into a list. @param {HTMLElement} list @param {Item[]} items */
export function renderRecent(list, items) {
  replace(
    list,
    ...items.map((item) =>
      h(
        'li',
        { class: `recent-${item.kind}` },
        h('time', { datetime: new Date(item.at).toISOString() }, clockTime(item.at)),
        ' ',
        item.text,
      ),
    ),
  );
  if (items.length === 0) replace(list, h('li', { class: 'empty' }, 'Nothing yet.'));
}
