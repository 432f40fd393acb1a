// Bench-only instrumentation: times every transaction a database handle runs and every
// statement inside it, without touching the service's code. The hold batcher runs one
// transaction per batch, the baselines and bookings one per request, so this shows how long the
// event row stays locked and how much of that is the database versus waiting between statements
// (the Node event loop, the network).
import { performance } from 'node:perf_hooks';

interface StatementStats {
  count: number;
  msTotal: number;
}

export interface TransactionStats {
  transactions: number;
  transactionMsTotal: number;
  transactionMsMax: number;
  /** Time inside transactions not spent waiting for a statement's answer. */
  gapMsTotal: number;
  /** Per statement (its first words), time from sending it to its answer. */
  statements: Record<string, StatementStats>;
}

interface Runner {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}
type Transaction = (fn: (tx: object) => Promise<unknown>) => Promise<unknown>;

const label = (sql: string) => sql.replace(/\s+/g, ' ').trim().slice(0, 48);

const empty = (): TransactionStats => ({
  transactions: 0, transactionMsTotal: 0, transactionMsMax: 0, gapMsTotal: 0, statements: {},
});

/** Replaces `handle.transaction` with a timed version, in place. */
export function traceTransactions(handle: { transaction: unknown }): { stats(): TransactionStats; reset(): void } {
  let stats = empty();
  const target = handle as { transaction: Transaction };
  const original = target.transaction.bind(handle);
  target.transaction = async (fn) => {
    const started = performance.now();
    let inStatements = 0;
    // Any method of the transaction handle called with SQL first is timed (PostgreSQL's
    // query, the MySQL store's own helpers); everything else passes through untouched.
    const timed = (tx: object): object => new Proxy(tx, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (typeof args[0] !== 'string') return (value as (...a: unknown[]) => unknown).apply(target, args);
          const sent = performance.now();
          try {
            return await (value as (...a: unknown[]) => unknown).apply(target, args);
          } finally {
            const ms = performance.now() - sent;
            inStatements += ms;
            const entry = (stats.statements[label(args[0])] ??= { count: 0, msTotal: 0 });
            entry.count++;
            entry.msTotal += ms;
          }
        };
      },
    });
    try {
      return await original((tx) => fn(timed(tx)));
    } finally {
      const ms = performance.now() - started;
      stats.transactions++;
      stats.transactionMsTotal += ms;
      stats.transactionMsMax = Math.max(stats.transactionMsMax, ms);
      stats.gapMsTotal += ms - inStatements;
    }
  };
  // Statements outside transactions (autocommitted) are timed too, when the handle runs them.
  const runner = handle as Partial<Runner>;
  if (typeof runner.query === 'function') {
    const query = runner.query.bind(handle);
    runner.query = async (sql, params) => {
      const sent = performance.now();
      try {
        return await query(sql, params);
      } finally {
        const entry = (stats.statements[label(sql)] ??= { count: 0, msTotal: 0 });
        entry.count++;
        entry.msTotal += performance.now() - sent;
      }
    };
  }
  return {
    stats: () => structuredClone(stats),
    reset: () => {
      stats = empty();
    },
  };
}
