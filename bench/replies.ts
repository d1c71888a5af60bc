/**
 * Replies owned by the conversation (SPEC §11), on two server processes sharing
 * PostgreSQL and Redis (PostgreSQL + Redis only: two processes cannot share PGlite):
 * - `fanout`: every conversation has its sender and a second socket on the sender's
 *   instance and a third on the other. Per delta, how much later than the sender the
 *   second sockets get it: the other instance's (through Redis) against the same
 *   instance's (the baseline, measured in the same replies).
 * - `resume`: a socket arrives on the other instance while the answer streams: how long
 *   from its `auth` to its `chat.resume`, against the same sockets' `auth.success` (what
 *   the auth itself takes); and whether resume + the rest equals the sender's text, every time.
 */
import { prepareSessions, type Session } from './lib/load';
import { freePort } from './lib/ports';
import { percentile } from './lib/proc';
import { spawnServer, spawnStub } from './lib/processes';
import type { Row } from './scenarios';

const CONVERSATIONS = 50;
const ROUNDS = 3;
// 60 tokens, 20 ms apart: about the pace of a hosted model.
const STUB = { STUB_TOKENS: '60', STUB_DELAY_MS: '20' };

type Frame = Record<string, unknown> & { type: string; at: number };

/** A socket that timestamps every frame it gets. */
const socket = (wsBase: string, conversationId: string, token: string) =>
  new Promise<{ frames: Frame[]; ws: WebSocket; authSentAt: number }>((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}/ws/chat/${conversationId}/`);
    const frames: Frame[] = [];
    let authSentAt = 0;
    ws.onmessage = (event) => {
      const frame = { ...JSON.parse(String(event.data)), at: performance.now() } as Frame;
      if (frame.type === 'ping') return ws.send('{"type":"pong"}');
      frames.push(frame);
      if (frame.type === 'auth.success') resolve({ frames, ws, authSentAt });
      if (frame.type === 'chat.error' && frames.length === 1) reject(new Error(String(frame.code)));
    };
    ws.onerror = () => reject(new Error('websocket error'));
    ws.onopen = () => {
      authSentAt = performance.now();
      ws.send(JSON.stringify({ type: 'auth', token }));
    };
  });

const until = async (done: () => boolean, ms = 30_000) => {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await Bun.sleep(10);
  }
};
const ended = (frames: Frame[]) =>
  frames.some((f) => (f.type === 'chat.stream' && f.done) || f.type === 'chat.error');
const deltas = (frames: Frame[]) => frames.filter((f) => f.type === 'chat.stream' && !f.done);

const twoInstances = async () => {
  const stub = await spawnStub(STUB);
  const first = await spawnServer(stub.url, freePort());
  const second = await first.sibling(freePort());
  const [a, b] = [first.url, second.url].map((url) => url.replace('http', 'ws')) as [string, string];
  const sessions = await prepareSessions(first.url, CONVERSATIONS, 1);
  return {
    a,
    b,
    sessions,
    stop: async () => {
      await first.stop();
      await stub.stop();
    },
  };
};

const shared = () => process.env.DATABASE_URL?.startsWith('postgres') && process.env.REDIS_URL;

export const fanout = async (): Promise<Row[]> => {
  if (!shared()) {
    console.log('fanout: skipped (two processes need PostgreSQL and Redis)');
    return [];
  }
  const { a, b, sessions, stop } = await twoInstances();
  try {
    const same: number[] = [];
    const other: number[] = [];
    let mismatches = 0;
    for (let round = 0; round < ROUNDS + 1; round++) {
      const trios = await Promise.all(
        sessions.map(async ({ token, conversationIds: [id] }: Session) =>
          Promise.all([
            socket(a, id as string, token),
            socket(a, id as string, token),
            socket(b, id as string, token),
          ]),
        ),
      );
      for (const [sender] of trios) sender.ws.send('{"type":"chat.message","content":"fan out"}');
      await until(() => trios.every((trio) => trio.every((s) => ended(s.frames))));
      for (const [sender, sameInstance, otherInstance] of trios) {
        const text = (frames: Frame[]) =>
          deltas(frames)
            .map((f) => f.content)
            .join('');
        if (
          text(sameInstance.frames) !== text(sender.frames) ||
          text(otherInstance.frames) !== text(sender.frames)
        )
          mismatches++;
        // Round 0 warms both processes up and is not counted.
        if (round === 0) continue;
        // By text position: the other instance may carry several deltas in one frame.
        const positions = (frames: Frame[]) => {
          let end = 0;
          return deltas(frames).map((f) => {
            end += String(f.content).length;
            return { end, at: f.at };
          });
        };
        const senderAt = positions(sender.frames);
        for (const [list, into] of [
          [positions(sameInstance.frames), same],
          [positions(otherInstance.frames), other],
        ] as const)
          for (const { end, at } of list) {
            const sentAt = senderAt.find((p) => p.end >= end)?.at;
            if (sentAt !== undefined) into.push(at - sentAt);
          }
      }
      for (const trio of trios) for (const s of trio) s.ws.close();
    }
    if (mismatches) throw new Error(`${mismatches} followers showed another text than the sender`);
    return [
      {
        scenario: 'fanout',
        metric: `second socket's lag behind the sender p50 (ms): same instance vs other instance (${CONVERSATIONS} conversations × ${ROUNDS})`,
        baseline: percentile(same, 50),
        ours: percentile(other, 50),
      },
      {
        scenario: 'fanout',
        metric: "second socket's lag behind the sender p99 (ms): same instance vs other instance",
        baseline: percentile(same, 99),
        ours: percentile(other, 99),
      },
    ];
  } finally {
    await stop();
  }
};

export const resume = async (): Promise<Row[]> => {
  if (!shared()) {
    console.log('resume: skipped (two processes need PostgreSQL and Redis)');
    return [];
  }
  const { a, b, sessions, stop } = await twoInstances();
  try {
    const authOnly: number[] = [];
    const toResume: number[] = [];
    let resumed = 0;
    let mismatches = 0;
    for (let round = 0; round < ROUNDS + 1; round++) {
      const senders = await Promise.all(
        sessions.map(({ token, conversationIds: [id] }: Session) => socket(a, id as string, token)),
      );
      for (const s of senders) s.ws.send('{"type":"chat.message","content":"resume me"}');
      // Each late socket arrives at its own moment within the answer (~1.2 s long).
      const late = await Promise.all(
        sessions.map(async ({ token, conversationIds: [id] }: Session) => {
          await Bun.sleep(100 + Math.random() * 800);
          return socket(b, id as string, token);
        }),
      );
      await until(() => [...senders, ...late].every((s) => ended(s.frames) || !s.frames.length));
      await Bun.sleep(200);
      for (const [i, s] of late.entries()) {
        const resumeFrame = s.frames.find((f) => f.type === 'chat.resume');
        if (!resumeFrame) continue; // arrived after the end: nothing to resume
        resumed++;
        if (round > 0) {
          authOnly.push((s.frames.find((f) => f.type === 'auth.success')?.at ?? 0) - s.authSentAt);
          toResume.push(resumeFrame.at - s.authSentAt);
        }
        const sender = senders[i] as (typeof senders)[0];
        const shown =
          String(resumeFrame.content) +
          deltas(s.frames)
            .map((f) => f.content)
            .join('');
        if (
          shown !==
          deltas(sender.frames)
            .map((f) => f.content)
            .join('')
        )
          mismatches++;
      }
      for (const s of [...senders, ...late]) s.ws.close();
    }
    if (mismatches) throw new Error(`${mismatches} resumed sockets showed another text than the sender`);
    return [
      {
        scenario: 'resume',
        metric: `auth → chat.resume on the other instance p50 (ms), vs auth → auth.success (${resumed} resumes, 0 texts differing)`,
        baseline: percentile(authOnly, 50),
        ours: percentile(toResume, 50),
        ratio: percentile(toResume, 50) / percentile(authOnly, 50),
      },
      {
        scenario: 'resume',
        metric: 'auth → chat.resume on the other instance p99 (ms), vs auth → auth.success',
        baseline: percentile(authOnly, 99),
        ours: percentile(toResume, 99),
        ratio: percentile(toResume, 99) / percentile(authOnly, 99),
      },
    ];
  } finally {
    await stop();
  }
};
