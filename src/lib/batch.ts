/**
 * Calls made in the same turn of the event loop reach `run` together, once that turn
 * is over (`setImmediate`): when 200 chat messages arrive or finish at once that is
 * one statement or one script call instead of 200, and a lone call waits only for
 * the end of its turn. `run` answers item for item, in call order.
 *
 * If a whole batch fails and `retryAlone(error)` says one item may be to blame, each
 * item is retried alone, one after the other in call order, so one bad item (a
 * conversation deleted meanwhile) fails only its own caller with its own error.
 * Otherwise (the service itself is gone) every caller gets the error at once.
 */
export const batchedPerTurn = <T, R>(
  run: (items: T[]) => Promise<R[]>,
  retryAlone: (error: unknown) => boolean,
) => {
  type Pending = { item: T; resolve: (result: R) => void; reject: (error: unknown) => void };
  let queue: Pending[] = [];

  const alone = async (p: Pending) => {
    try {
      p.resolve((await run([p.item]))[0] as R);
    } catch (error) {
      p.reject(error);
    }
  };

  const flush = async () => {
    const batch = queue;
    queue = [];
    if (batch.length === 1) return alone(batch[0] as Pending);
    try {
      const results = await run(batch.map((p) => p.item));
      for (const [i, p] of batch.entries()) p.resolve(results[i] as R);
    } catch (error) {
      if (!retryAlone(error)) for (const p of batch) p.reject(error);
      // One after the other: side by side, each in its own transaction, two
      // messages of one conversation could be stored out of order.
      else for (const p of batch) await alone(p);
    }
  };

  return (item: T) =>
    new Promise<R>((resolve, reject) => {
      if (queue.push({ item, resolve, reject }) === 1) setImmediate(flush);
    });
};
