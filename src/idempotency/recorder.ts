// How a service stores an Idempotency-Key's response in the transaction of its effect, without
// knowing anything of HTTP: the route hands it a Recorder that knows how to render an outcome,
// and the service calls record() (or recordOutcomes() for a batch) as the LAST statement of
// the effect's transaction. If the transaction rolls back, the stored response goes with it.
import { DomainError } from '../errors.ts';
import type { Tx } from '../storage/store.ts';
import type { Claim, IdempotencyService } from './idempotency.service.ts';

/** What a service produced: its result, or a refusal it decided inside its transaction. */
export type Outcome<T> = T | DomainError;

export interface Rendered {
  status: number;
  /** null: no body (204), stored as empty text. */
  body: object | null;
}

export class Recorder<T> {
  constructor(
    readonly keys: IdempotencyService,
    readonly claim: Claim,
    readonly render: (outcome: Outcome<T>) => Rendered,
  ) {}

  record(tx: Tx, outcome: Outcome<T>): Promise<void> {
    return recordOutcomes(tx, [[this, outcome]]);
  }
}

/**
 * Stores the responses of many requests in one statement; entries without a recorder (no key)
 * cost nothing, so a batch without keys runs no extra statement.
 */
export async function recordOutcomes<T>(
  tx: Tx,
  entries: ReadonlyArray<readonly [Recorder<T> | undefined, Outcome<T>]>,
): Promise<void> {
  const keyed = entries.filter((entry): entry is readonly [Recorder<T>, Outcome<T>] => entry[0] !== undefined);
  const [first] = keyed;
  if (first === undefined) return;
  await first[0].keys.complete(
    tx,
    keyed.map(([recorder, outcome]) => {
      const { status, body } = recorder.render(outcome);
      return { claim: recorder.claim, response: { status, body: body === null ? '' : JSON.stringify(body) } };
    }),
  );
}

/**
 * Locks the keys of the keyed entries before a batch writes its effects (see
 * IdempotencyService.lockClaims); per entry, false when its key was taken over by a retry and
 * the entry must be left out. Entries without a recorder cost nothing.
 */
export async function lockClaims<T>(tx: Tx, recorders: ReadonlyArray<Recorder<T> | undefined>): Promise<boolean[]> {
  const keyed = recorders.filter((recorder): recorder is Recorder<T> => recorder !== undefined);
  const [first] = keyed;
  if (first === undefined) return recorders.map(() => true);
  const held = await first.keys.lockClaims(
    tx,
    keyed.map((recorder) => recorder.claim),
  );
  let next = 0;
  return recorders.map((recorder) => recorder === undefined || held[next++]!);
}
