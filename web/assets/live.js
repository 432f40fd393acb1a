// Live availability: the server's change stream (Server-Sent Events) when it has one, polling
// when it does not (an older server answers the stream route 404, which closes an EventSource
// for good) or while the stream is reconnecting. The caller sees snapshots either way, and the
// mode, so that the page can say how fresh its figures are.

const POLL_MS = 2000;
/** A server without the stream is asked again this often, in case it was upgraded. */
const STREAM_RETRY_MS = 30_000;

/**
 * @typedef {{ event_id: number, name: string, total: number, available: number, held: number,
 *   booked: number, position?: string }} Availability
 * @typedef {'connecting' | 'live' | 'polling'} Mode
 */

/**
 * @param {{
 *   streamUrl: string,
 *   poll: () => Promise<void>,
 *   onAvailability: (availability: Availability) => void,
 *   onMode?: (mode: Mode) => void,
 * }} options
 */
export function follow({ streamUrl, poll, onAvailability, onMode = () => {} }) {
  /** @type {EventSource | null} */
  let source = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pollTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer;
  let stopped = false;
  let polling = false;

  const pollLoop = async () => {
    clearTimeout(pollTimer);
    if (polling) return; // the round in flight schedules the next
    polling = true;
    try {
      await poll();
    } catch {
      // The page shows its own errors; the next round tries again.
    } finally {
      polling = false;
    }
    if (!stopped && source?.readyState !== EventSource.OPEN) pollTimer = setTimeout(pollLoop, POLL_MS);
  };

  const openStream = () => {
    if (stopped) return;
    onMode('connecting');
    source = new EventSource(streamUrl);
    source.addEventListener('open', () => {
      clearTimeout(pollTimer);
      onMode('live');
    });
    source.addEventListener('availability', (message) => {
      onAvailability(JSON.parse(/** @type {MessageEvent<string>} */ (message).data));
    });
    source.addEventListener('error', () => {
      if (source?.readyState === EventSource.CLOSED) {
        // Refused (no stream on this server, or an error status): poll, and ask again later.
        source = null;
        retryTimer = setTimeout(openStream, STREAM_RETRY_MS);
      }
      // Otherwise the EventSource reconnects by itself; poll meanwhile.
      onMode('polling');
      void pollLoop();
    });
  };

  void pollLoop();
  openStream();
  return {
    /** Reads the figures now, after an action of this page changed them. */
    refresh: () => poll().catch(() => {}),
    /** Whether availability arrives over the stream (the change feed is there too). */
    isLive: () => source?.readyState === EventSource.OPEN,
    stop() {
      stopped = true;
      source?.close();
      clearTimeout(pollTimer);
      clearTimeout(retryTimer);
    },
  };
}

/** Words for the mode, shown beside live figures. @param {Mode} mode */
export const modeText = (mode) =>
  ({
    connecting: 'Connecting…',
    live: 'Live',
    polling: `Updating every ${POLL_MS / 1000} s`,
  })[mode];
