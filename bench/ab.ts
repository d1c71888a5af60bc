/**
 * `bun run bench:ab <revision> [turns]`: is this working tree faster than another
 * revision? Time to first token (the latency scenario) of the server as it is here
 * and as it was at `revision` (a git worktree of it, on this tree's node_modules),
 * each against the bare relay. The three run side by side, each with its own stub,
 * and take turns in rotating order (default 15 turns), so a slow stretch of this
 * shared machine falls on all three rather than on one; each turn compares the two
 * servers on the same stretch. Prints every turn and, per server, the median of its
 * ratios to the relay, and how often this tree's p99 was the lower. Writes nothing.
 *
 * Why: the p99 of one turn moves by ±50% from turn to turn here, so two separate
 * `bun run bench latency` runs of two trees can differ by more than a real change
 * does. Paired this way, a change worth ~10% shows in most turns.
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareSessions } from './lib/load';
import { type Child, spawnBaseline, spawnServer, spawnStub } from './lib/processes';
import { LATENCY_STUB, latencyTurn, type Target } from './scenarios';

const root = new URL('..', import.meta.url).pathname;
const [revision, turnsArg] = process.argv.slice(2);
if (!revision) {
  console.error('usage: bun run bench:ab <git revision> [turns]');
  process.exit(2);
}
const turns = Number(turnsArg ?? 15);
const perTurn = { users: 10, perUser: 20 };
const stubEnv = { STUB_TOKENS: String(LATENCY_STUB.tokens), STUB_DELAY_MS: String(LATENCY_STUB.pace) };
let nextPort = 24000 + Math.floor(Math.random() * 4000);

const checkout = mkdtempSync(join(tmpdir(), 'chatbot-ab-'));
await Bun.$`git -C ${root} worktree add --detach ${checkout} ${revision}`.quiet();
symlinkSync(join(root, 'node_modules'), join(checkout, 'node_modules'));
// The servers run behind the bench's wrapper (bench/gc-server.ts), which older revisions lack.
if (!existsSync(join(checkout, 'bench/gc-server.ts'))) {
  await Bun.$`git -C ${root} worktree remove --force ${checkout}`.quiet().nothrow();
  console.error(`${revision} has no bench/gc-server.ts: compare with a later revision`);
  process.exit(2);
}

type Contender = { name: string; child: Child; stub: Child; target: Target };
const contenders: Contender[] = [];
const start = async (name: string, cwd?: string): Promise<Contender> => {
  const stub = await spawnStub(stubEnv);
  const child = cwd
    ? await spawnServer(stub.url, nextPort++, {}, 1, cwd)
    : await spawnBaseline(stub.url, nextPort++);
  const all = { users: perTurn.users, perUser: perTurn.perUser * turns };
  const sessions = cwd
    ? await prepareSessions(child.url, all.users, all.perUser)
    : Array.from({ length: all.users }, () => ({
        token: 'any',
        conversationIds: Array.from({ length: all.perUser }, () => crypto.randomUUID()),
      }));
  const contender = { name, child, stub, target: { child, sessions } };
  contenders.push(contender);
  return contender;
};

const median = (values: number[]) => [...values].sort((a, b) => a - b)[(values.length - 1) >> 1] as number;

try {
  const relay = await start('relay');
  const here = await start('this tree', root);
  const there = await start(revision, checkout);
  const p99 = new Map<Contender, number[]>(contenders.map((c) => [c, []]));
  for (let turn = 0; turn < turns; turn++) {
    for (let k = 0; k < 3; k++) {
      const c = contenders[(turn + k) % 3] as Contender;
      const sessions = c.target.sessions.map(({ token, conversationIds }) => ({
        token,
        conversationIds: conversationIds.slice(turn * perTurn.perUser, (turn + 1) * perTurn.perUser),
      }));
      const { ttft99 } = await latencyTurn({ ...c.target, sessions }, c.child.url.replace('http', 'ws'));
      p99.get(c)?.push(ttft99);
    }
    const at = (c: Contender) => p99.get(c)?.[turn] as number;
    const [r, a, b] = [at(relay), at(here), at(there)];
    console.log(
      `turn ${turn + 1}: TTFT p99 over pace (ms) relay ${r.toFixed(1)}, this tree ${a.toFixed(1)} (${(a / r).toFixed(2)}), ${revision} ${b.toFixed(1)} (${(b / r).toFixed(2)})`,
    );
  }
  const of = (c: Contender) => p99.get(c) as number[];
  const ratios = (c: Contender) => of(c).map((v, i) => v / (of(relay)[i] as number));
  const [mine, theirs] = [of(here), of(there)];
  const lower = mine.filter((v, i) => v < (theirs[i] as number)).length;
  console.log(
    [
      `median ratio to the relay: this tree ${median(ratios(here)).toFixed(2)}, ${revision} ${median(ratios(there)).toFixed(2)}`,
      `this tree ÷ ${revision}, TTFT p99 per turn: median ${median(mine.map((v, i) => v / (theirs[i] as number))).toFixed(2)}; lower in ${lower} of ${turns} turns`,
    ].join('\n'),
  );
} finally {
  await Promise.all(contenders.flatMap((c) => [c.child.stop(), c.stub.stop()]));
  await Bun.$`git -C ${root} worktree remove --force ${checkout}`.quiet().nothrow();
  rmSync(checkout, { recursive: true, force: true });
}
