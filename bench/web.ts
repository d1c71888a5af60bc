/**
 * `web`: what an answer streaming into the web app costs the browser, per token, in a
 * conversation of 100 messages against one of 2 (the baseline, measured in the same
 * run and the same page). A delta changes one message; the other 100 should cost it
 * nothing, so the ratio should stay near 1. The browser is Debian's Chromium
 * (CHROMIUM_PATH, default /usr/bin/chromium) driven by playwright-core; the cost is the
 * page's own main-thread time (Chrome's `Performance.getMetrics` TaskDuration) from
 * the message sent to the answer shown and settled.
 */
import { existsSync } from 'node:fs';
import { type CDPSession, chromium, type Page } from 'playwright-core';
import { BENCH_PASSWORD, openChat, prepareSessions, type Session } from './lib/load';
import { freePort } from './lib/ports';
import { percentile } from './lib/proc';
import { spawnServer, spawnStub } from './lib/processes';
import type { Row } from './scenarios';

const TOKENS = Number(process.env.BENCH_WEB_TOKENS ?? 200);
const PACE_MS = 10;
const EXCHANGES = 50;
const ROUNDS = 5;
const TARGET = 1.5;

/**
 * What functions that run in the page read of it: this file is not compiled against
 * the DOM's types, and the page's CSP refuses strings to evaluate.
 */
type InPage = {
  document: {
    querySelectorAll(selector: string): ArrayLike<{
      classList: { contains(name: string): boolean };
      textContent: string | null;
    }>;
  };
};

/** The page's main-thread time (ms) while one answer streams in and settles. */
const answerCost = async (page: Page, cdp: CDPSession, question: string) => {
  const taskMs = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    return (metrics.find((m) => m.name === 'TaskDuration')?.value ?? 0) * 1000;
  };
  const answers = await page.locator('article.message.assistant').count();
  const before = await taskMs();
  await page.getByLabel('Message').fill(question);
  await page.getByLabel('Message').press('Enter');
  await page.waitForFunction(
    ([count, last]) => {
      const all = (globalThis as unknown as InPage).document.querySelectorAll('article.message.assistant');
      const answer = all[all.length - 1];
      return (
        all.length > count &&
        !answer?.classList.contains('streaming') &&
        (answer?.textContent ?? '').includes(last)
      );
    },
    [answers, `tok${TOKENS - 1}`] as const,
    { timeout: 60_000 },
  );
  // The branch read that follows the done frame, and its render.
  await page.getByRole('button', { name: 'Send' }).waitFor();
  await Bun.sleep(300);
  return (await taskMs()) - before;
};

export const web = async (): Promise<Row[]> => {
  const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromiumPath))
    throw new Error(
      `web: no Chromium at ${chromiumPath} (apt-get install -y chromium, or set CHROMIUM_PATH)`,
    );
  // The questions that fill the history are answered at once; the measured ones at a model's pace.
  const stub = await spawnStub({
    STUB_TOKENS: String(TOKENS),
    STUB_DELAY_MS: String(PACE_MS),
    STUB_PACED_MARK: 'measured',
  });
  const server = await spawnServer(stub.url, freePort(), { AI_TITLES: 'false' });
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const [session] = await prepareSessions(server.url, 1, 2);
    const { username, token, conversationIds } = session as Session & { username: string };
    const ids = { long: conversationIds[0] as string, short: conversationIds[1] as string };
    // Titled, so the page can open each from its list.
    for (const [title, id] of Object.entries(ids))
      await fetch(`${server.url}/api/conversations/${id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ title }),
      });
    for (const [id, exchanges] of [
      [ids.long, EXCHANGES],
      [ids.short, 1],
    ] as const) {
      const chat = await openChat(server.url.replace('http', 'ws'), id, token);
      for (let i = 0; i < exchanges; i++) await chat.ask(`question ${i}`);
      chat.close();
    }

    const page = await (await browser.newContext({ viewport: { width: 1100, height: 720 } })).newPage();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(server.url);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(BENCH_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    const open = async (title: 'short' | 'long') => {
      await page.locator('.sidebar .list li', { hasText: title }).first().click();
      await page.waitForFunction(
        (n) => (globalThis as unknown as InPage).document.querySelectorAll('article.message').length >= n,
        title === 'long' ? 100 : 2,
      );
      await page.getByRole('button', { name: 'Send' }).waitFor();
    };
    const costs: Record<'short' | 'long', number[]> = { short: [], long: [] };
    // One answer in each first, not measured: the page's code warms up.
    for (let round = -1; round < ROUNDS; round++)
      for (const title of ['short', 'long'] as const) {
        await open(title);
        const ms = await answerCost(page, cdp, `measured ${title} ${round}`);
        if (round >= 0) costs[title].push(ms / TOKENS);
      }
    const short = percentile(costs.short, 50);
    const long = percentile(costs.long, 50);
    const ratio = long / short;
    console.log(
      `web: ms of the page's main thread per token, short ${costs.short.map((c) => c.toFixed(3)).join(' ')}, long ${costs.long.map((c) => c.toFixed(3)).join(' ')}`,
    );
    return [
      {
        scenario: 'web',
        metric: `page main-thread ms per token of an answer, 100 messages shown vs 2 (${TOKENS} tokens)`,
        baseline: short,
        ours: long,
        ratio,
        target: `≤ ${TARGET}`,
        met: ratio <= TARGET,
      },
    ];
  } finally {
    await browser.close();
    await server.stop();
    await stub.stop();
  }
};
