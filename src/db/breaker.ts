import type postgres from 'postgres';
import { isDatabaseDown } from '../lib/failures';

/** A query refused because the database is known to be away, or one that took too long. */
class DatabaseUnavailableError extends Error {
  readonly code = 'DATABASE_UNAVAILABLE';
  constructor() {
    super('Database unavailable');
    this.name = 'DatabaseUnavailableError';
  }
}

export interface BreakerTiming {
  /** A query that has not answered by then fails (SPEC §10: every request answers within 2 s). */
  deadlineMs: number;
  /** How often a known-down database is tried again (service resumes within 2 s of its return). */
  probeEveryMs: number;
}

type Query = postgres.PendingQuery<postgres.Row[]>;

/**
 * Fail fast while PostgreSQL is away. postgres.js queues a query behind connection
 * attempts, one after another, so during a long outage a request could wait several
 * connect timeouts. Instead: the first query that fails for want of a database (or
 * outlives the deadline) opens the breaker; while open every query fails at once,
 * and `probe` (its own connection, not the pool's) is tried every `probeEveryMs`
 * until it answers, which closes the breaker.
 */
export const createBreaker = (probe: () => Promise<unknown>, timing: BreakerTiming) => {
  let down = false;
  let timer: Timer | undefined;

  const withDeadline = <T>(work: PromiseLike<T>) =>
    new Promise<T>((resolve, reject) => {
      const deadline = setTimeout(() => {
        trip();
        reject(new DatabaseUnavailableError());
      }, timing.deadlineMs);
      work.then(
        (value) => {
          clearTimeout(deadline);
          resolve(value);
        },
        (error) => {
          clearTimeout(deadline);
          if (isDatabaseDown(error)) trip();
          reject(error);
        },
      );
    });

  const attempt = async () => {
    try {
      await withDeadline(probe());
      down = false;
      timer = undefined;
    } catch {
      timer = setTimeout(attempt, timing.probeEveryMs);
    }
  };

  function trip() {
    if (down) return;
    down = true;
    timer = setTimeout(attempt, timing.probeEveryMs);
  }

  return {
    get down() {
      return down;
    },
    /**
     * Runs a postgres.js query under the breaker. The answer keeps the query's
     * `values()` (drizzle asks for rows as arrays), and the query only starts when
     * awaited, as postgres.js's own does.
     */
    guard: (query: () => Query) => {
      if (down) throw new DatabaseUnavailableError();
      const pending = query();
      const guarded = {
        values: () => {
          pending.values();
          return guarded;
        },
        // biome-ignore lint/suspicious/noThenProperty: a thenable standing in for postgres.js's query
        then: <A, B>(
          onFulfilled?: (rows: postgres.Row[]) => A | PromiseLike<A>,
          onRejected?: (error: unknown) => B | PromiseLike<B>,
        ) => withDeadline(pending).then(onFulfilled, onRejected),
      };
      return guarded;
    },
    stop: () => {
      clearTimeout(timer);
      timer = undefined;
    },
  };
};
