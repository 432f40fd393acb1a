// The time left on a hold as the buyer sees it: minutes and seconds to the server's deadline, a
// bar, and a spoken warning at a few marks (the timer itself is not read out every second).
import { announce, minutesSeconds } from './dom.js';

const ANNOUNCE_AT_SECONDS = [60, 30, 10];
const URGENT_MS = 10_000;
const TICK_MS = 250;

/**
 * @param {{ timer: HTMLElement, progress: HTMLProgressElement, onLapse: () => void }} parts
 *   onLapse runs at every tick once the deadline has passed, until stop() or a new deadline.
 */
export function countdown({ timer, progress, onLapse }) {
  /** Times in server milliseconds; offsetMs is server time minus this browser's. */
  let running = { createdMs: 0, deadlineMs: 0, offsetMs: 0, on: false };
  /** @type {Set<number>} */
  let announced = new Set();

  const tick = () => {
    if (!running.on) return;
    const leftMs = running.deadlineMs - (Date.now() + running.offsetMs);
    timer.textContent = minutesSeconds(leftMs);
    timer.classList.toggle('urgent', leftMs <= URGENT_MS);
    progress.value = Math.max(0, leftMs / (running.deadlineMs - running.createdMs));
    const seconds = Math.ceil(leftMs / 1000);
    for (const mark of ANNOUNCE_AT_SECONDS) {
      if (seconds <= mark && seconds > 0 && !announced.has(mark)) {
        announced.add(mark);
        announce(`${seconds} seconds left to book`);
      }
    }
    if (leftMs <= 0) onLapse();
  };
  setInterval(tick, TICK_MS);

  return {
    /**
     * Counts down to this deadline; a later one (an extension) is warned about afresh.
     * @param {string} createdAt @param {string} expiresAt @param {number} offsetMs
     */
    set(createdAt, expiresAt, offsetMs) {
      const deadlineMs = Date.parse(expiresAt);
      if (deadlineMs > running.deadlineMs) announced = new Set();
      running = { createdMs: Date.parse(createdAt), deadlineMs, offsetMs, on: true };
      tick();
    },
    stop() {
      running = { ...running, on: false };
    },
  };
}
