// Small DOM helpers: elements built in code (no innerHTML, so no markup from data is ever
// parsed), listeners attached in code (the content security policy forbids inline handlers).

/**
 * The element with this id; a missing one is a bug in the page, not a state to handle.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return /** @type {T} */ (element);
}

/**
 * h('button', { type: 'button', class: 'link', onclick: fn }, 'Cancel'): attributes as given,
 * `on…` keys as listeners, `dataset` as data-* attributes; children are nodes or text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown>} [props]
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    } else if (key === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (value === true || typeof value === 'string' || typeof value === 'number') {
      // An attribute is text; anything else (an object) would have been "[object Object]".
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(element, ...children);
  return element;
}

/**
 * @param {Element} parent
 * @param {...(Node | string | number | null | undefined | false)} children
 */
export function append(parent, ...children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(typeof child === 'number' ? String(child) : child);
  }
}

/** @param {Element} element @param {...(Node | string | number | null | undefined | false)} children */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, ...children);
}

/** @param {number} n @param {string} one @param {string} [many] */
export const count = (n, one, many = `${one}s`) => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;

/** @param {string | number | Date} at */
export const clockTime = (at) => new Date(at).toLocaleTimeString('en-GB', { hour12: false });

/** "1:05" for 65 seconds; never negative. @param {number} ms */
export function minutesSeconds(ms) {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

/** Text for a polite screen-reader announcement in #announcer. @param {string} text */
export function announce(text) {
  const announcer = document.getElementById('announcer');
  if (announcer !== null) announcer.textContent = text;
}

/** A wait in words: "45 s", "3 min", "1 h 5 min". @param {number} seconds */
export function durationText(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h${minutes % 60 === 0 ? '' : ` ${minutes % 60} min`}`;
}
