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
import { freePort } from './lib/ports';
import { spawnServer, spawnStub } from './lib/processes';
import type { Row } from './scenarios';

const TOKENS = Number(process.env.BENCH_WEB_TOKENS ?? 200);
const PACE_MS = 10;
const EXCHANGES = 50;
const ROUNDS = 5;
const TARGET = 1.5;
const PASSWORD = 'Bench-password-123!';

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

const json = async (url: string, init: { method: string; token?: string; body?: unknown }) => {
  const response = await fetch(url, {
    method: init.method,
    headers: {
      'content-type': 'application/json',
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  if (!response.ok) throw new Error(`${init.method} ${url}: ${response.status} ${await response.text()}`);
  return response.json() as Promise<Record<string, unknown>>;
};

/** `count` questions and their answers in the conversation, through the server's own WebSocket. */
const fill = (wsBase: string, conversationId: string, token: string, count: number) =>
  new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}/ws/chat/${conversationId}/`);
    let sent = 0;
    const next = () => {
      if (sent === count) {
        ws.close();
        resolve();
        return;
      }
      sent++;
      ws.send(JSON.stringify({ type: 'chat.message', content: `question ${sent}` }));
    };
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onerror = () => reject(new Error('websocket error'));
    ws.onmessage = (event) => {
      const frame = JSON.parse(String(event.data));
      if (frame.type === 'auth.success' || (frame.type === 'chat.stream' && frame.done)) next();
      if (frame.type === 'chat.error') reject(new Error(frame.code));
    };
  });

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

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
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
    const api = `${server.url}/api`;
    const username = `web${Date.now().toString(36)}`;
    await json(`${api}/auth/register`, {
      method: 'POST',
      body: { username, email: `${username}@example.com`, password: PASSWORD },
    });
    const { access } = (await json(`${api}/token/pair`, {
      method: 'POST',
      body: { username, password: PASSWORD },
    })) as { access: string };
    const wsBase = server.url.replace('http', 'ws');
    const ids: Record<'short' | 'long', string> = { short: '', long: '' };
    for (const [title, exchanges] of [
      ['long', EXCHANGES],
      ['short', 1],
    ] as const) {
      const made = await json(`${api}/conversations/`, { method: 'POST', token: access, body: { title } });
      ids[title] = made.id as string;
      await fill(wsBase, ids[title], access, exchanges);
    }

    const page = await (await browser.newContext({ viewport: { width: 1100, height: 720 } })).newPage();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(server.url);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
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
    const short = median(costs.short);
    const long = median(costs.long);
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
