// Bench-only instrumentation: times every transaction a database handle runs and every
// statement inside it, without touching the service's code. The service's hold and booking
// batchers run one transaction (or one autocommitted write) per batch, so this shows how long
// the event row stays locked, how many round trips each transaction makes, and how much of that
// is the database versus waiting between statements (the Node event loop, the network).
import { performance } from 'node:perf_hooks';
import type { Sql, SqlDatabase, Tx } from '../src/storage/sql.ts';

interface StatementStats {
  count: number;
  msTotal: number;
}

export interface TransactionStats {
  transactions: number;
  transactionMsTotal: number;
  transactionMsMax: number;
  /**
   * Time inside transactions not spent waiting for a statement's answer: getting a connection,
   * BEGIN, COMMIT (the WAL flush) and the event loop between statements.
   */
  gapMsTotal: number;
  /** Statements sent inside transactions (round trips, not counting BEGIN and COMMIT). */
  statementsInTransactions: number;
  /** Transaction durations, from asking for a connection to the answer to COMMIT (a batch's time in the database). */
  transactionMsP50: number;
  transactionMsP99: number;
  /**
   * Autocommitted writes (`writeRows`: one statement that is its own transaction, such as the
   * service's fast grant of a whole hold batch): how many, and their durations.
   */
  autocommitWrites: number;
  autocommitWriteMsTotal: number;
  autocommitWriteMsP50: number;
  autocommitWriteMsP99: number;
  /** Per statement (its first words), time from sending it to its answer. */
  statements: Record<string, StatementStats>;
}

const label = (sql: string) => sql.replace(/\s+/g, ' ').trim().slice(0, 48);

const empty = (): TransactionStats => ({
  transactions: 0,
  transactionMsTotal: 0,
  transactionMsMax: 0,
  gapMsTotal: 0,
  statementsInTransactions: 0,
  transactionMsP50: 0,
  transactionMsP99: 0,
  autocommitWrites: 0,
  autocommitWriteMsTotal: 0,
  autocommitWriteMsP50: 0,
  autocommitWriteMsP99: 0,
  statements: {},
});

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

type Statement = Sql['rows'] | Sql['run'];

/**
 * Replaces `db.transaction`, `db.rows`, `db.run` (and `db.writeRows` when there is one) with
 * timed versions, in place: the store calls them through `store.sql`, so every batch the service
 * runs is timed.
 */
export function traceTransactions(db: SqlDatabase): { stats(): TransactionStats; reset(): void } {
  let stats = empty();
  let durations: number[] = [];
  let writeDurations: number[] = [];
  const record = (sql: string, ms: number) => {
    const entry = (stats.statements[label(sql)] ??= { count: 0, msTotal: 0 });
    entry.count++;
    entry.msTotal += ms;
  };
  /** A statement method, timed; `spent` adds up the time inside a transaction's statements. */
  const timed = <F extends Statement>(method: F, spent?: { ms: number }): F =>
    (async (sql: string, params?: unknown[]) => {
      const sent = performance.now();
      try {
        return await method(sql, params);
      } finally {
        const ms = performance.now() - sent;
        if (spent !== undefined) {
          spent.ms += ms;
          stats.statementsInTransactions++;
        }
        record(sql, ms);
      }
    }) as F;

  const transaction = db.transaction.bind(db);
  db.transaction = async <T>(fn: (tx: Tx) => Promise<T>): Promise<T> => {
    const started = performance.now();
    const spent = { ms: 0 };
    try {
      return await transaction((tx) => {
        const rows = timed(tx.rows.bind(tx), spent);
        const run = timed(tx.run.bind(tx), spent);
        // Everything else about the transaction handle (its dialect) passes through untouched.
        return fn(
          new Proxy(tx, {
            get: (target, property, receiver): unknown =>
              property === 'rows' ? rows : property === 'run' ? run : Reflect.get(target, property, receiver),
          }),
        );
      });
    } finally {
      const ms = performance.now() - started;
      stats.transactions++;
      stats.transactionMsTotal += ms;
      stats.transactionMsMax = Math.max(stats.transactionMsMax, ms);
      stats.gapMsTotal += ms - spent.ms;
      durations.push(ms);
    }
  };
  // Statements outside transactions (autocommitted: snapshots, the sweeper's scan) are timed too.
  db.rows = timed(db.rows.bind(db));
  db.run = timed(db.run.bind(db));
  // An autocommitted write is a whole transaction in one round trip; looked up by name so that
  // a store without it (older or newer shapes of src/storage/sql.ts) is traced all the same.
  const handle = db as unknown as Record<string, unknown>;
  if (typeof handle.writeRows === 'function') {
    const writeRows = timed((handle.writeRows as Sql['rows']).bind(db));
    handle.writeRows = async (sql: string, params?: unknown[]) => {
      const started = performance.now();
      try {
        return await writeRows(sql, params);
      } finally {
        const ms = performance.now() - started;
        stats.autocommitWrites++;
        stats.autocommitWriteMsTotal += ms;
        writeDurations.push(ms);
      }
    };
  }
  return {
    stats: () => {
      const sorted = [...durations].sort((a, b) => a - b);
      const writes = [...writeDurations].sort((a, b) => a - b);
      return {
        ...structuredClone(stats),
        transactionMsP50: percentile(sorted, 0.5),
        transactionMsP99: percentile(sorted, 0.99),
        autocommitWriteMsP50: percentile(writes, 0.5),
        autocommitWriteMsP99: percentile(writes, 0.99),
      };
    },
    reset: () => {
      stats = empty();
      durations = [];
      writeDurations = [];
    },
  };
}
