/**
 * `bun run bench:ab <revision> [turns]`: is this working tree faster than another
 * revision? Time to first token (the latency scenario) of the server as it is here
 * and as it was at `revision` (a git worktree of it, on this tree's node_modules),
 * each against the bare relay. The three run side by side, each with its own stub,
 * and take turns in every order (default 18 turns), so a slow stretch of this
 * shared machine falls on all three rather than on one; each turn compares the two
 * servers on the same stretch. Prints every turn and, per server, the median of its
 * ratios to the relay, and how often this tree's p99 was the lower. Writes nothing.
 *
 * Why: the p99 of one turn moves by ±50% from turn to turn here, so two separate
 * `bun run bench latency` runs of two trees can differ by more than a real change
 * does. Paired, the noise is smaller but still there: runs of this tree against
 * itself have come out 4 of 8, 5 of 6 and 0 of 6 turns (README, Performance).
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from './lib/proc';
import { latencyStubEnv, latencyTurn, type Side, socketUrl, startSide, turnOf } from './scenarios';

const root = new URL('..', import.meta.url).pathname;
const [revision, turnsArg] = process.argv.slice(2);
if (!revision) {
  console.error('usage: bun run bench:ab <git revision> [turns]');
  process.exit(2);
}
const turns = Number(turnsArg ?? 18);
// Every order of the three, in turn: each goes first, and follows each other, equally
// often every six turns (a plain rotation made one server follow the other twice as
// often as the reverse, and a side measured right after a server ran slower).
const ORDERS = [
  [0, 1, 2],
  [1, 2, 0],
  [2, 0, 1],
  [0, 2, 1],
  [2, 1, 0],
  [1, 0, 2],
];
const perTurn = { users: 10, perUser: 20 };
// One more turn's conversations: each side warms up (JIT) on them before the turns that count.
const all = { users: perTurn.users, perUser: perTurn.perUser * (turns + 1) };

const checkout = mkdtempSync(join(tmpdir(), 'chatbot-ab-'));
const sides: Side[] = [];
try {
  await Bun.$`git -C ${root} worktree add --detach ${checkout} ${revision}`.quiet();
  symlinkSync(join(root, 'node_modules'), join(checkout, 'node_modules'));
  // The servers run behind the bench's wrapper, which older revisions lack.
  if (!existsSync(join(checkout, 'bench/gc-server.ts')))
    throw new Error(`${revision} has no bench/gc-server.ts: compare with a later revision`);
  for (const cwd of [undefined, root, checkout])
    sides.push(await startSide(cwd ? 'ours' : 'baseline', latencyStubEnv, all, {}, 1, cwd));
  const [relay, here, there] = sides as [Side, Side, Side];
  const p99 = new Map<Side, number[]>(sides.map((side) => [side, []]));
  const of = (side: Side) => p99.get(side) as number[];
  // Unmeasured: early turns run colder code, which would count against whichever side went first.
  for (const side of sides) await latencyTurn(turnOf(side, turns, perTurn.perUser), socketUrl(side));
  for (let turn = 0; turn < turns; turn++) {
    for (const k of ORDERS[turn % ORDERS.length] as number[]) {
      const side = sides[k] as Side;
      of(side).push((await latencyTurn(turnOf(side, turn, perTurn.perUser), socketUrl(side))).ttft99);
    }
    const [r, a, b] = [relay, here, there].map((side) => of(side)[turn] as number) as [
      number,
      number,
      number,
    ];
    console.log(
      `turn ${turn + 1}: TTFT p99 over pace (ms) relay ${r.toFixed(1)}, this tree ${a.toFixed(1)} (${(a / r).toFixed(2)}), ${revision} ${b.toFixed(1)} (${(b / r).toFixed(2)})`,
    );
  }
  const median = (values: number[]) => percentile(values, 50).toFixed(2);
  const toRelay = (side: Side) => of(side).map((v, i) => v / (of(relay)[i] as number));
  const [mine, theirs] = [of(here), of(there)];
  const lower = mine.filter((v, i) => v < (theirs[i] as number)).length;
  console.log(
    [
      `median ratio to the relay: this tree ${median(toRelay(here))}, ${revision} ${median(toRelay(there))}`,
      `this tree ÷ ${revision}, TTFT p99 per turn: median ${median(mine.map((v, i) => v / (theirs[i] as number)))}; lower in ${lower} of ${turns} turns`,
    ].join('\n'),
  );
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await Promise.all(sides.map((side) => side.stop()));
  await Bun.$`git -C ${root} worktree remove --force ${checkout}`.quiet().nothrow();
  rmSync(checkout, { recursive: true, force: true });
}
