/**
 * `bun run bench cold`: the latency scenario's burst — 200 sockets × 2 messages, 50
 * tokens 20 ms apart — sent right after start, with no warm-up turn, against the
 * cheapest relay (bench/baseline-relay.ts) started the same way; then the same burst
 * again on the same processes, warm. Each side gets fresh processes per run, sides
 * alternating first. The server's sessions are prepared over REST before the burst
 * (register, log in, create conversations), so its auth and database paths have run
 * once; the chat path has not. The cold ÷ warm rows say how much of the first burst is
 * start-up (the JIT compiling the chat path) rather than the job. With PostgreSQL and
 * Redis, the relay that stores as SPEC §11 requires (baseline-relay.ts) takes its turns
 * too, for scale.
 */

import { openChat } from './lib/load';
import { percentile } from './lib/proc';
import {
  compared,
  latencyStubEnv,
  type Row,
  type SideKind,
  socketUrl,
  startSide,
  storable,
} from './scenarios';

const PACE_MS = Number(latencyStubEnv.STUB_DELAY_MS);

const burst = async (
  sessions: { token: string; conversationIds: string[] }[],
  wsBase: string,
  round: number,
) => {
  const sockets = await Promise.all(
    sessions.flatMap((s) => s.conversationIds.map((id) => openChat(wsBase, id, s.token))),
  );
  const ttft: number[] = [];
  for (let i = 0; i < 2; i++) {
    const replies = await Promise.all(sockets.map((c) => c.ask(`burst ${round} question ${i}`)));
    for (const reply of replies) ttft.push(reply.ttftMs - PACE_MS);
  }
  for (const c of sockets) c.close();
  return percentile(ttft, 99);
};

/**
 * BENCH_COLD_PRIME=n (a diagnosis, at most 10): n sockets each ask one message before
 * the cold burst, so what the first message alone pays (connections, statements,
 * scripts, modules) is out of the burst and what is left is the code still cold.
 */
const PRIME = Math.min(10, Number(process.env.BENCH_COLD_PRIME ?? 0));

const run = async (which: SideKind) => {
  // Two bursts' conversations: the cold one, then the warm one (and one to prime).
  const side = await startSide(which, latencyStubEnv, { users: 10, perUser: 41 });
  try {
    const half = side.sessions.map((s) => ({ ...s, conversationIds: s.conversationIds.slice(0, 20) }));
    const rest = side.sessions.map((s) => ({ ...s, conversationIds: s.conversationIds.slice(20, 40) }));
    const primers = side.sessions
      .slice(0, PRIME)
      .map((s) => ({ ...s, conversationIds: s.conversationIds.slice(40) }));
    if (primers.length) await burst(primers, socketUrl(side), 2);
    const cold = await burst(half, socketUrl(side), 0);
    const warm = await burst(rest, socketUrl(side), 1);
    return { cold, warm };
  } finally {
    await side.stop();
  }
};

type Burst = { cold: number; warm: number };

export const cold = async (): Promise<Row[]> => {
  const times = Number(process.env.BENCH_REPEAT ?? 5);
  // For scale, when there is PostgreSQL and Redis to store into: the relay that stores as SPEC §11 requires.
  const storing = storable();
  const kinds: SideKind[] = storing ? ['baseline', 'ours', 'storing relay'] : ['baseline', 'ours'];
  const pairs: { baseline: Burst; ours: Burst; 'storing relay'?: Burst }[] = [];
  for (let i = 0; i < times; i++) {
    const order = [...kinds.slice(i % kinds.length), ...kinds.slice(0, i % kinds.length)];
    const result: Partial<Record<SideKind, Burst>> = {};
    for (const which of order) result[which] = await run(which);
    pairs.push(result as (typeof pairs)[number]);
  }
  const median = (values: number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] as number;
  const ratios = pairs.map((p) => p.ours.cold / p.baseline.cold);
  /** How single runs' ratios spread, for a row's label. */
  const spreadOf = (values: number[]) =>
    `median of ${times} runs, ratios ${[...values]
      .sort((a, b) => a - b)
      .map((r) => r.toFixed(2))
      .join(' / ')}`;
  const spread = spreadOf(ratios);
  const baselineCold = median(pairs.map((p) => p.baseline.cold));
  const oursCold = median(pairs.map((p) => p.ours.cold));
  const baselineWarm = median(pairs.map((p) => p.baseline.warm));
  const oursWarm = median(pairs.map((p) => p.ours.warm));
  const againstStoring = pairs.map((p) => p.ours.cold / (p['storing relay']?.cold ?? Number.NaN));
  const storingRow: Row[] = storing
    ? [
        {
          ...compared(
            'cold',
            `for scale: the first burst against the relay that stores as SPEC §11 requires (see latency; ${spreadOf(againstStoring)})`,
            median(pairs.map((p) => p['storing relay']?.cold ?? Number.NaN)),
            oursCold,
          ),
          ratio: median(againstStoring),
        },
      ]
    : [];
  return [
    {
      ...compared(
        'cold',
        `first burst after start${PRIME ? ` (primed by ${PRIME} sockets)` : ''}: TTFT over stub pace p99 (ms) (${spread})`,
        baselineCold,
        oursCold,
      ),
      ratio: median(ratios),
      target: '≤ 2',
      met: median(ratios) <= 2,
    },
    compared(
      'cold',
      'the same burst again on the same processes (warm): TTFT p99 (ms)',
      baselineWarm,
      oursWarm,
    ),
    compared('cold', 'for scale: the relay, cold ÷ warm TTFT p99', baselineWarm, baselineCold),
    compared(
      'cold',
      'for scale: the server, cold ÷ warm TTFT p99 (start-up: mostly the JIT)',
      oursWarm,
      oursCold,
    ),
    ...storingRow,
  ];
};
