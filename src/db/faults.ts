// What both server backends (PostgreSQL, MySQL) do when their database fails. The drivers
// (postgres.ts, mysql.ts) know their own pools and error codes; what they do about a fault is
// written once, here.
//
// The breaker: once the database is known to be down (a connection cannot be made, a statement
// hangs past its deadline, the server turned read-only in a failover), every request is
// answered 503 at once instead of each waiting out its own timeout, and a probe checks the
// database every PROBE_INTERVAL_MS. The first probe that succeeds (and has rebuilt the pool on
// the primary it found) closes the breaker: recovery needs no restart and no request to
// notice it.
//
// faultHandling: checking a connection out with a deadline, giving it back or destroying it
// after an error, and turning an error into the 503 callers see. Then the 'error' listener every
// connection keeps for life, and the bounded retry of a transaction that lost a deadlock.
import { DatabaseUnavailable } from '../errors.ts';

/** How often a tripped breaker checks whether the database is back. */
export const PROBE_INTERVAL_MS = 200;
/** Retries of a transaction that lost a deadlock or a serialization check, after the first try. */
export const CONFLICT_RETRIES = 3;

/** How a database error should be handled. */
export type FaultKind =
  /** The server is unreachable, starting, shutting down or read-only: trip the breaker. */
  | 'down'
  /** This one connection broke (killed backend, reset): throw it away, answer 503. */
  | 'lost'
  /** Deadlock or serialization failure: roll back and run the transaction again. */
  | 'conflict'
  /** The server is up but could not do it now (statement timeout, lock timeout, too many connections). */
  | 'busy';

export interface DatabaseEvents {
  /** The breaker tripped: the database is considered down. */
  down?(error: unknown): void;
  /** A probe succeeded: requests go through again. */
  up?(): void;
  /** Every fault seen, by kind (for metrics). */
  fault?(kind: FaultKind): void;
}

export class Breaker {
  private open = false;
  private stopped = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private reason = '';
  private readonly tripListeners = new Set<() => void>();

  constructor(
    /** Succeeds when the database is usable again; may rebuild the pool (a new primary). */
    private readonly probe: () => Promise<void>,
    private readonly events: DatabaseEvents = {},
  ) {}

  get isOpen(): boolean {
    return this.open;
  }

  /** Throws the 503 while the database is known to be down. */
  check(): void {
    if (this.open) throw new DatabaseUnavailable(this.reason);
  }

  trip(error: unknown): void {
    if (this.open || this.stopped) return;
    this.open = true;
    this.reason = describe(error);
    this.events.down?.(error);
    // Requests waiting for a pooled connection would otherwise wait out their own timeout.
    for (const listener of [...this.tripListeners]) listener();
    this.scheduleProbe(0);
  }

  /** Calls `listener` once if the breaker trips; returns the function that cancels it. */
  onTrip(listener: () => void): () => void {
    this.tripListeners.add(listener);
    return () => this.tripListeners.delete(listener);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.probeTimer);
  }

  private scheduleProbe(delayMs: number): void {
    if (this.stopped) return;
    this.probeTimer = setTimeout(() => {
      this.probe().then(
        () => {
          if (this.stopped) return;
          this.open = false;
          this.events.up?.();
        },
        (error: unknown) => {
          this.reason = describe(error);
          this.scheduleProbe(PROBE_INTERVAL_MS);
        },
      );
    }, delayMs);
    // A probe never keeps a process alive that has nothing else to do.
    this.probeTimer.unref();
  }
}

/** A driver's pool, as faultHandling sees it. */
export interface PoolFaults<C> {
  breaker: Breaker;
  events: DatabaseEvents;
  /** Waiting for a pooled connection to become free. */
  acquireTimeoutMs: number;
  /** The engine's sorting of its errors (classifyPgError, classifyMysqlError). */
  classify(error: unknown): FaultKind | undefined;
  /** Checks a connection out of the pool in use now. */
  checkout(): Promise<C>;
  /** Gives a healthy connection back to its pool. */
  giveBack(connection: C): void;
  /** Closes a connection that may be broken, so that its pool never hands it out again. */
  destroy(connection: C, error: unknown): void;
  /** Where the database is (a PostgreSQL host), to start a 503's message with. */
  where?(): string;
}

export interface FaultHandling<C> {
  /** A pooled connection within acquireTimeoutMs; the 503 at once while the breaker is open. */
  acquire: () => Promise<C>;
  /** Returns the connection to the pool, or destroys it when `error` says it may be broken. */
  release: (connection: C, error?: unknown) => void;
  /** Sorts an error out, trips the breaker if it says the server is gone, and maps it to what callers see. */
  fault: (error: unknown, inDoubt?: boolean) => unknown;
}

export function faultHandling<C>(pool: PoolFaults<C>): FaultHandling<C> {
  const { breaker, events } = pool;
  const message = (error: unknown) =>
    pool.where === undefined ? describe(error) : `${pool.where()}: ${describe(error)}`;
  return {
    acquire: async () => {
      breaker.check();
      try {
        return await acquireWithin(
          () => pool.checkout(),
          (connection) => pool.giveBack(connection),
          pool.acquireTimeoutMs,
          breaker,
        );
      } catch (error) {
        if (error instanceof DatabaseUnavailable) throw error;
        // Both drivers fail a checkout only when they could not open a connection (refused, timed
        // out, the server starting or shutting down): the server is down, whatever the code says.
        events.fault?.('down');
        breaker.trip(error);
        throw new DatabaseUnavailable(message(error), false, error);
      }
    },
    release: (connection, error) => {
      const kind = error === undefined ? undefined : pool.classify(error);
      if (kind === 'lost' || kind === 'down') pool.destroy(connection, error);
      else pool.giveBack(connection);
    },
    fault: (error, inDoubt = false) => {
      if (error instanceof DatabaseUnavailable) return error;
      const kind = pool.classify(error);
      if (kind === undefined || kind === 'conflict') return error;
      events.fault?.(kind);
      if (kind === 'down') breaker.trip(error);
      return new DatabaseUnavailable(message(error), inDoubt && kind !== 'busy', error);
    },
  };
}

/**
 * Waits at most `timeoutMs` for a pooled connection, and not at all once the breaker trips. A
 * connection that arrives after we stopped waiting goes straight back to the pool.
 */
function acquireWithin<C>(
  connect: () => Promise<C>,
  giveBack: (connection: C) => void,
  timeoutMs: number,
  breaker: Breaker,
): Promise<C> {
  return new Promise<C>((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, connection?: C) => {
      if (settled) {
        if (connection !== undefined) giveBack(connection);
        return;
      }
      settled = true;
      clearTimeout(timer);
      cancelTripListener();
      if (connection !== undefined) resolve(connection);
      else reject(error ?? new Error('no connection'));
    };
    const timer = setTimeout(
      () => finish(new DatabaseUnavailable(`no database connection became free within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const cancelTripListener = breaker.onTrip(() => finish(new DatabaseUnavailable('the database went down')));
    connect().then(
      (connection) => finish(undefined, connection),
      (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
    );
  });
}

/**
 * Gives a connection (or pool) an 'error' listener for its whole life, checked out or idle. An
 * 'error' event nobody listens to ends the process; the query in flight is rejected as well,
 * which is where the error is handled.
 */
export function listenForErrors(emitter: { on(event: 'error', listener: () => void): unknown }): void {
  emitter.on('error', () => {});
}

/** Runs `attempt` again after a deadlock or serialization failure, a bounded number of times. */
export async function retryConflicts<T>(
  attempt: () => Promise<T>,
  isConflict: (error: unknown) => boolean,
): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isConflict(error)) throw error;
      if (retry >= CONFLICT_RETRIES) {
        throw new DatabaseUnavailable(
          `the transaction lost ${retry + 1} deadlocks or serialization checks in a row`,
          false,
          error,
        );
      }
      // Jittered, so that the transactions that collided do not collide again.
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * (retry + 1)));
    }
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
