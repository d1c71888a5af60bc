import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { createClient, STRONG_PASSWORD, uniqueUsername } from '../support/client';
import { DEFAULT_TOKENS, DRIP_ANSWER, drip, startOpenAIStub } from '../support/openai-stub';
import { startProxy } from '../support/proxy';
import { startServer, type TestServer } from '../support/server';
import { signUpStaff } from '../support/staff';
import { until } from '../support/wait';
import { connectAuthenticated } from '../support/ws';

/**
 * SPEC §14, the web app, in a real browser: Debian's Chromium driven by playwright-core,
 * against a real server and the provider stub. A person's whole session, a second tab,
 * a dropped network, a quota refusal, the keyboard alone and a 375 px screen, on both
 * backends. Screenshots go to .screenshots/ (the README's come from there).
 */

// The page's own globals, for the code the tests run in it (`evaluate`); the suite is
// typed without the DOM library.
declare const document: {
  createRange(): { selectNodeContents(node: unknown): void; getClientRects(): { length: number } };
};
declare function getComputedStyle(element: unknown): { color: string; backgroundColor: string };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = '.screenshots';
const slowDrip = (words: string) => drip(words, 40);
const dripAnswer = DRIP_ANSWER.trim();
const answer = DEFAULT_TOKENS.join('');

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer({
    CHAT_RATE_LIMIT: '1000',
    AI_TITLES: 'true',
    AI_MODELS: 'gpt-4o-mini,second-model',
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // One origin under test: one renderer per page is enough, and nothing to translate.
      '--disable-site-isolation-trials',
      '--disable-features=site-per-process,IsolateOrigins,Translate,OptimizationHints,MediaRouter',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page of a new browser context; page errors and CSP violations fail the test. */
const newPage = async (
  options: { width?: number; context?: BrowserContext; colorScheme?: 'light' | 'dark' } = {},
) => {
  const context =
    options.context ??
    (await browser.newContext({
      viewport: { width: options.width ?? 1100, height: 720 },
      colorScheme: options.colorScheme ?? 'light',
    }));
  // A stuck step fails with what it waited for, well inside the test's own timeout.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  pages.push(page);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().includes('401')) problems.push(message.text());
  });
  return { page, context, problems };
};

const registerThrough = async (page: Page, url = server.url) => {
  await page.goto(url);
  await page.getByRole('button', { name: /Create an account/ }).click();
  const username = uniqueUsername('web');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Email').fill(`${username}@example.com`);
  await page.getByLabel('Password').fill(STRONG_PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  return username;
};

const sendMessage = async (page: Page, text: string) => {
  await page.getByLabel('Message').fill(text);
  await page.getByLabel('Message').press('Enter');
};

/** Waits until the locator's text, trimmed, is `text`. */
const textIs = async (locator: Locator, text: string, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  let seen: string | undefined;
  while (Date.now() < deadline) {
    seen = (await locator.textContent({ timeout: timeoutMs }).catch(() => undefined))?.trim();
    if (seen === text) return;
    await Bun.sleep(50);
  }
  throw new Error(`expected the text ${JSON.stringify(text)}, saw ${JSON.stringify(seen)}`);
};

/**
 * The WCAG contrast ratio of each locator's text against the first opaque background
 * behind it (4.5 is the least WCAG AA allows for text of this size).
 */
const contrastOf = (locators: Locator[]) =>
  Promise.all(
    locators.map((locator) =>
      locator.evaluate((element) => {
        const channels = (color: string) => (color.match(/[\d.]+/g) ?? []).map(Number);
        const luminance = ([r = 0, g = 0, b = 0]: number[]) => {
          const linear = (v: number) =>
            v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4;
          return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
        };
        let background: number[] | undefined;
        type Box = { parentElement: Box | null };
        for (let node: Box | null = element; node && !background; node = node.parentElement) {
          const color = channels(getComputedStyle(node).backgroundColor);
          if (color.length === 3 || color[3] === 1) background = color;
        }
        const [text, behind] = [channels(getComputedStyle(element).color), background ?? [255, 255, 255]];
        const [a, b] = [luminance(text), luminance(behind)];
        return Math.round(((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)) * 10) / 10;
      }),
    ),
  );

/** Waits until the locator matches `count` elements. */
const countIs = async (locator: Locator, count: number, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  while (Date.now() < deadline) {
    seen = await locator.count();
    if (seen === count) return;
    await Bun.sleep(50);
  }
  throw new Error(`expected ${count} elements, saw ${seen}`);
};

/**
 * A browser test, tried a second time when it fails: now and then playwright-core's
 * in-process client receives an event for a WebSocket it has not been told of yet
 * (`Cannot find object to "frameSent": ws@…`) and throws on its own timer, which fails
 * whichever test runs. Each test makes its own user and context, so a retry is clean.
 */
const browserTest = (name: string, fn: () => Promise<void>) =>
  test(
    name,
    async () => {
      pages.length = 0;
      try {
        await fn();
      } catch (error) {
        // What each page showed, for the CI log and .screenshots/.
        for (const [i, page] of pages.entries()) {
          if (page.isClosed()) continue;
          await page.screenshot({ path: `${SHOTS}/failed-${i}.png` }).catch(() => {});
          const text = await page
            .locator('body')
            .innerText({ timeout: 1000 })
            .catch(() => '');
          console.error(`page ${i} at ${page.url()} showed:\n${text.slice(0, 2000)}`);
        }
        const problems = server.logs.filter((line) => /"level":"(warn|error)"/.test(line));
        console.error(`the server's warnings and errors:\n${problems.slice(-10).join('\n')}`);
        throw error;
      }
    },
    { retry: 1 },
  );

/** The pages the running test opened. */
const pages: Page[] = [];

const answers = (page: Page) => page.getByRole('article', { name: 'Assistant' });
const lastAnswer = (page: Page) => answers(page).last();

/**
 * The text of the composer's button (`Send`, or `Stop` while an answer streams), of New
 * chat, of the usage and of the last answer is readable: WCAG AA's 4.5 at the least.
 */
const expectReadable = async (page: Page, composerButton: 'Send' | 'Stop') => {
  const ratios = await contrastOf([
    page.getByRole('button', { name: composerButton }),
    page.getByRole('button', { name: 'New chat' }),
    page.getByLabel('Usage today'),
    lastAnswer(page).locator('.markdown'),
  ]);
  for (const ratio of ratios) expect(ratio).toBeGreaterThanOrEqual(4.5);
};

describe('a person’s session', () => {
  browserTest('register, chat, see the title, stop, regenerate, switch branch, edit, log out', async () => {
    const { page, problems } = await newPage();
    await registerThrough(page);
    await page.getByLabel('Model').selectOption('second-model');
    await page.getByRole('button', { name: 'New chat' }).click();
    expect(await page.locator('.conversation-title').textContent()).toBe('New conversation');

    await sendMessage(page, 'Hello there');
    await textIs(lastAnswer(page).locator('.markdown'), answer);
    // A real model answers here: no offline note.
    expect(await page.getByRole('note').count()).toBe(0);
    expect(server.stub.requests.at(-2)?.model ?? server.stub.requests.at(-1)?.model).toBe('second-model');
    // The title the model suggested replaces the default, live.
    await page.locator('.conversation-title', { hasNotText: 'New conversation' }).waitFor();
    expect(await page.locator('.conversation-title').textContent()).not.toBe('New conversation');
    await page.getByLabel('Usage today').filter({ hasText: 'Today: 1 message ·' }).waitFor();
    await page.screenshot({ path: `${SHOTS}/chat.png` });

    // Stop a long answer: what arrived stays, marked stopped.
    await sendMessage(page, slowDrip('Tell me a long story'));
    // Stopped once some of it arrived (stopped before its first token, nothing is stored).
    await page.locator('article[data-status="streaming"] .markdown', { hasText: 'w1' }).waitFor();
    // Light colours: the buttons' and the answer's text is readable (WCAG AA).
    await expectReadable(page, 'Stop');
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.locator('article[data-status="interrupted"]').waitFor();
    const stopped = await lastAnswer(page).locator('.markdown').textContent();
    expect(dripAnswer.startsWith(stopped?.trim() ?? 'x')).toBe(true);
    expect(await lastAnswer(page).textContent()).toContain('Stopped');

    // Regenerate: a second version of the answer, and the switcher between them.
    await lastAnswer(page).getByRole('button', { name: 'Regenerate' }).click();
    await lastAnswer(page).getByLabel('Version').filter({ hasText: '2 / 2' }).waitFor();
    await page.screenshot({ path: `${SHOTS}/branches.png` });
    await lastAnswer(page).getByRole('button', { name: 'Previous version' }).click();
    await lastAnswer(page).getByLabel('Version').filter({ hasText: '1 / 2' }).waitFor();
    await page.locator('article[data-status="interrupted"]').waitFor();
    await lastAnswer(page).getByRole('button', { name: 'Next version' }).click();
    await lastAnswer(page).getByLabel('Version').filter({ hasText: '2 / 2' }).waitFor();

    // Edit the first question: a new branch from it.
    const first = page.getByRole('article', { name: 'You' }).first();
    await first.getByRole('button', { name: 'Edit' }).click();
    // As in the message box: Shift+Enter starts a new line, Enter sends.
    await page.getByLabel('Edit message').fill('Hello');
    await page.getByLabel('Edit message').press('Shift+Enter');
    await page.getByLabel('Edit message').pressSequentially('again');
    await page.getByLabel('Edit message').press('Enter');
    await page
      .getByRole('article', { name: 'You' })
      .first()
      .getByLabel('Version')
      .filter({ hasText: '2 / 2' })
      .waitFor();
    expect(await page.getByRole('article', { name: 'You' }).first().locator('.text').textContent()).toBe(
      'Hello\nagain',
    );
    await countIs(page.getByRole('article'), 2);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Log in' }).waitFor();
    expect(problems).toEqual([]);
    await page.context().close();
  });

  browserTest('conversations: search, rename and delete', async () => {
    const { page, problems } = await newPage();
    await registerThrough(page);
    await page.getByRole('button', { name: 'New chat' }).click();
    await sendMessage(page, 'a question about aubergines');
    await textIs(lastAnswer(page).locator('.markdown'), answer);
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByLabel('Search conversations').fill('aubergine');
    const hit = page.getByLabel('Search results').getByRole('button');
    await countIs(hit, 1);
    expect(await hit.textContent()).toContain('aubergines');
    await page.getByLabel('Search conversations').fill('');

    const list = page.getByRole('navigation', { name: 'Conversations' });
    // A title longer than the sidebar is cut off; it does not widen the sidebar's
    // column and push the New chat button out of sight.
    const long = `${'Aubergines and courgettes '.repeat(9)}end`;
    await list
      .getByRole('button', { name: /^Rename / })
      .first()
      .click();
    await page.getByLabel('New title').fill(long);
    await page.getByLabel('New title').press('Enter');
    const longTitle = list.getByRole('button', { name: long, exact: true });
    await longTitle.waitFor();
    const sidebar = await page.locator('#sidebar').boundingBox();
    const newChat = await page.getByRole('button', { name: 'New chat' }).boundingBox();
    const titleBox = await longTitle.boundingBox();
    expect(sidebar && newChat && titleBox).toBeTruthy();
    if (sidebar && newChat && titleBox) {
      expect(newChat.x + newChat.width).toBeLessThanOrEqual(sidebar.x + sidebar.width);
      expect(titleBox.x + titleBox.width).toBeLessThanOrEqual(sidebar.x + sidebar.width);
    }
    expect(await longTitle.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);

    await list
      .getByRole('button', { name: /^Rename / })
      .first()
      .click();
    await page.getByLabel('New title').fill('Vegetables');
    await page.getByLabel('New title').press('Enter');
    await list.getByRole('button', { name: 'Vegetables', exact: true }).waitFor();

    page.on('dialog', (dialog) => dialog.accept());
    const before = await list.getByRole('button', { name: /^Delete / }).count();
    await list.getByRole('button', { name: 'Delete Vegetables' }).click();
    await countIs(list.getByRole('button', { name: /^Delete / }), before - 1);
    expect(problems).toEqual([]);
    await page.context().close();
  });
});

describe('long histories', () => {
  browserTest('past 100 conversations and 100 messages: earlier pages load on request', async () => {
    const api = createClient(server.url);
    const user = await api.register(uniqueUsername('long'));
    const { access } = await api.login(user.username);
    for (let i = 0; i < 101; i++) {
      const made = await api.request('POST', '/api/conversations/', {
        token: access,
        body: { title: `old ${i}` },
      });
      expect(made.status).toBe(201);
    }
    // The newest conversation: 51 questions and answers, 102 messages on its branch.
    const long = await api.request('POST', '/api/conversations/', { token: access, body: { title: 'long' } });
    const ws = await connectAuthenticated(server.wsUrl, long.body.id as string, access);
    for (let i = 0; i < 51; i++) {
      ws.send({ type: 'chat.message', content: `question ${i}` });
      expect((await ws.reply()).final.done).toBe(true);
    }
    ws.close();

    const { page, problems } = await newPage();
    await page.goto(server.url);
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    // The newest page of the branch: questions 1 – 50 and their answers, the last answer last.
    expect(await page.locator('.conversation-title').textContent()).toBe('long');
    const articles = page.getByRole('article');
    await countIs(articles, 100);
    await textIs(page.getByRole('article', { name: 'You' }).first().locator('.text'), 'question 1');
    await textIs(page.getByRole('article', { name: 'You' }).last().locator('.text'), 'question 50');
    await page.getByRole('button', { name: 'Show earlier messages' }).click();
    await countIs(articles, 102);
    await textIs(page.getByRole('article', { name: 'You' }).first().locator('.text'), 'question 0');
    await countIs(page.getByRole('button', { name: 'Show earlier messages' }), 0);

    // The list: 100 of 102 conversations, then the rest on request.
    const items = page.locator('.sidebar .list li');
    await countIs(items, 100);
    await page.getByRole('button', { name: 'Load more conversations' }).click();
    await countIs(items, 102);
    await page.locator('.sidebar .list li', { hasText: 'old 0' }).waitFor();
    await countIs(page.getByRole('button', { name: 'Load more conversations' }), 0);

    // A new answer keeps the earlier messages shown and lands at the end.
    await sendMessage(page, 'question 51');
    await textIs(lastAnswer(page).locator('.markdown'), answer);
    await countIs(articles, 104);
    await textIs(page.getByRole('article', { name: 'You' }).first().locator('.text'), 'question 0');
    expect(problems).toEqual([]);
    await page.context().close();

    // A reply that ends before the page's first read of the branch has answered: the read
    // its end starts still shows only the newest page, not the whole branch. The page's
    // reads are held until the reply (sent from another socket) has ended there.
    const late = await newPage();
    // When the page's socket got the done frame, and when each read was asked for: the
    // browser reports both in order, so a read asked for after the done frame is one
    // the reply's end started (the opening's reads were asked for before).
    let doneAt = Number.POSITIVE_INFINITY;
    late.page.on('websocket', (socket) =>
      socket.on('framereceived', ({ payload }) => {
        if (String(payload).includes('"done":true')) doneAt = Math.min(doneAt, performance.now());
      }),
    );
    const reads: number[] = [];
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    await late.page.route(/\/api\/conversations\/[^/]+\/messages/, async (route) => {
      reads.push(performance.now());
      await released;
      await route.continue();
    });
    await late.page.goto(server.url);
    await late.page.getByLabel('Username').fill(user.username);
    await late.page.getByLabel('Password').fill(STRONG_PASSWORD);
    await late.page.getByRole('button', { name: 'Log in' }).click();
    await until(() => reads.length >= 1, 'the page read the branch once its socket was open');
    const other = await connectAuthenticated(server.wsUrl, long.body.id as string, access);
    other.send({ type: 'chat.message', content: 'question 52' });
    expect((await other.reply()).final.done).toBe(true);
    other.close();
    await until(
      () => reads.some((at) => at >= doneAt),
      "the reply's end made the page read the branch again",
    );
    release();
    const lateArticles = late.page.getByRole('article');
    await textIs(late.page.getByRole('article', { name: 'You' }).last().locator('.text'), 'question 52');
    await countIs(lateArticles, 100);
    await countIs(late.page.getByRole('button', { name: 'Show earlier messages' }), 1);
    expect(late.problems).toEqual([]);
    await late.page.context().close();
  });
});

describe('live', () => {
  browserTest(
    'a message sent while a new chat is still connecting waits for it, and is answered',
    async () => {
      const { page, problems } = await newPage();
      await registerThrough(page);
      // The chat's socket takes a second and a half to reach the server.
      let routed = 0;
      await page.routeWebSocket(/\/ws\/chat\//, async (ws) => {
        routed++;
        await Bun.sleep(1500);
        ws.connectToServer();
      });
      await page.getByRole('button', { name: 'New chat' }).click();
      await sendMessage(page, 'typed at once');
      await textIs(lastAnswer(page).locator('.markdown'), answer);
      expect(routed).toBe(1);
      expect(await page.getByLabel('Message').inputValue()).toBe('');
      expect(await page.getByText('Not connected').count()).toBe(0);
      expect(server.stub.requestsFor('typed at once')).toHaveLength(1);
      expect(problems).toEqual([]);
      await page.context().close();
    },
  );

  browserTest('a second tab follows the answer as it streams', async () => {
    const { page, context, problems } = await newPage();
    await registerThrough(page);
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByLabel('Message').waitFor();
    const second = await newPage({ context });
    await second.page.goto(page.url());
    await second.page.getByLabel('Message').waitFor();
    await second.page.locator('.connection').waitFor({ state: 'detached' });

    await sendMessage(page, slowDrip('Stream to both tabs'));
    // The second tab sees the answer while it streams, not only once it is stored.
    await second.page.locator('article[data-status="streaming"]').waitFor();
    await textIs(second.page.locator('article[data-status="complete"].assistant .markdown'), dripAnswer);
    await textIs(lastAnswer(page).locator('.markdown'), dripAnswer);
    expect([...problems, ...second.problems]).toEqual([]);
    await context.close();
  });

  browserTest(
    'the network drops mid-answer: it reconnects and resumes, and the whole answer is shown',
    async () => {
      const proxy = await startProxy(server.url);
      const base = proxy.url.replace(/\/$/, '');
      const { page, context } = await newPage();
      await registerThrough(page, base);
      await page.getByRole('button', { name: 'New chat' }).click();
      await page.getByLabel('Message').waitFor();
      await sendMessage(page, slowDrip('Survive a drop'));
      await page.locator('article[data-status="streaming"] .markdown', { hasText: 'w3' }).waitFor();
      await proxy.cut();
      await page.locator('.connection', { hasText: 'Connection lost. Reconnecting…' }).waitFor();
      await page.screenshot({ path: `${SHOTS}/reconnecting.png` });
      await Bun.sleep(300);
      await proxy.restore();
      await page.locator('.connection').waitFor({ state: 'detached', timeout: 10_000 });
      await textIs(lastAnswer(page).locator('.markdown'), dripAnswer);
      await page.locator('article.assistant[data-status="complete"]').waitFor();
      await context.close();
      await proxy.cut();
    },
  );

  browserTest('a refusal is shown in words: the daily quota', async () => {
    const { page, context } = await newPage();
    const username = await registerThrough(page);
    const api = createClient(server.url);
    const staff = await signUpStaff(server.resources.database.db, api);
    const users = await api.request('GET', `/api/admin/users?q=${username}`, { token: staff.access });
    const id = users.body.items[0].id as string;
    await api.request('PATCH', `/api/admin/users/${id}`, {
      token: staff.access,
      body: { daily_message_quota: 1 },
    });
    await page.getByRole('button', { name: 'New chat' }).click();
    await sendMessage(page, 'The one message of today');
    await textIs(lastAnswer(page).locator('.markdown'), answer);
    await sendMessage(page, 'Is there any quota left?');
    // With when it comes back (the next midnight UTC).
    await page
      .getByRole('alert')
      .filter({ hasText: /Your daily quota is used up\. It resets at midnight UTC, in \d+ (s|min|h)/ })
      .waitFor();
    await page.getByLabel('Usage today').filter({ hasText: '1 / 1 messages' }).waitFor();
    // The refused message is back in the message box, to send again later.
    expect(await page.getByLabel('Message').inputValue()).toBe('Is there any quota left?');
    // A refused edit keeps its editor open, with the edited text.
    await page.getByRole('article', { name: 'You' }).getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Edit message').fill('An edit over quota');
    await page.getByRole('button', { name: 'Send edit' }).click();
    await page.getByRole('alert').filter({ hasText: 'Your daily quota is used up' }).waitFor();
    await Bun.sleep(200);
    expect(await page.getByLabel('Edit message').inputValue()).toBe('An edit over quota');
    // Nothing was stored for the refused message.
    await countIs(page.getByRole('article'), 2);
    await context.close();
  });
});

describe('safe Markdown', () => {
  /** A table's cells: twelve numbers, together wider than an answer can be. */
  const WIDE = Array.from({ length: 12 }, (_, i) => String((i + 1) % 10).repeat(12));

  browserTest(
    'the model’s Markdown renders; its raw HTML and script links never reach the page',
    async () => {
      const stub = startOpenAIStub({
        tokens: [
          'Here is **bold** and `code`, a list and a block:\n\n',
          '- one\n- two\n\n',
          '```ts\nconst answer = 42;\n```\n\n',
          '<img src="x" onerror="window.pwned=1">',
          '<script>window.pwned=2</script>\n\n',
          '[click](javascript:window.pwned=3) ',
          '<a href="javascript:window.pwned=4">raw link</a>\n\n',
          `| ${WIDE.map((_, i) => `col ${i}`).join(' | ')} |\n`,
          `|${'---|'.repeat(WIDE.length)}\n`,
          `| ${WIDE.join(' | ')} |\n`,
        ],
      });
      const hostile = await startServer({ CHAT_RATE_LIMIT: '1000' }, { stub });
      try {
        const { page, context, problems } = await newPage();
        await registerThrough(page, hostile.url);
        await page.getByRole('button', { name: 'New chat' }).click();
        await sendMessage(page, 'Say something dangerous');
        const rendered = lastAnswer(page).locator('.markdown');
        await page.locator('article.assistant[data-status="complete"]').waitFor();
        expect(await rendered.locator('strong').textContent()).toBe('bold');
        expect(await rendered.locator('p code').textContent()).toBe('code');
        expect(await rendered.locator('pre code').textContent()).toBe('const answer = 42;\n');
        expect(await rendered.locator('img, script').count()).toBe(0);
        const hrefs = await rendered
          .locator('a')
          .evaluateAll((links) => links.map((a) => a.getAttribute('href')));
        expect(hrefs.filter((href) => href?.startsWith('javascript'))).toEqual([]);
        // The raw HTML is shown as text.
        expect(await rendered.textContent()).toContain('<img src="x"');
        expect(await page.evaluate('window.pwned')).toBeUndefined();
        // A table wider than the answer scrolls sideways inside it; its cells keep their
        // words whole rather than breaking every number over several lines.
        const table = rendered.locator('table');
        expect(await table.evaluate((t) => t.scrollWidth > t.clientWidth)).toBe(true);
        const linesOfCells = await rendered.locator('td').evaluateAll((cells) =>
          cells.map((cell) => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            return range.getClientRects().length;
          }),
        );
        expect(linesOfCells).toEqual(WIDE.map(() => 1));
        const overflow = 'document.documentElement.scrollWidth - window.innerWidth';
        expect(await page.evaluate<number>(overflow)).toBe(0);
        await page.screenshot({ path: `${SHOTS}/markdown.png` });
        expect(problems).toEqual([]);
        await context.close();
      } finally {
        await hostile.stop();
        stub.stop();
      }
    },
  );
});

describe('access', () => {
  browserTest('keyboard alone, in dark colours: register, start a chat, send, read the answer', async () => {
    const { page, context } = await newPage({ colorScheme: 'dark' });
    await page.goto(server.url);
    const press = (key: string) => page.keyboard.press(key);
    /** The focused control: its name, else its label, else its text. */
    const focused = () =>
      page.evaluate<string | null>(
        "(e => e && (e.getAttribute('name') || e.getAttribute('aria-label') || e.textContent))(document.activeElement)",
      );
    const tabTo = async (name: string) => {
      for (let i = 0; i < 30; i++) {
        await press('Tab');
        if ((await focused()) === name) return;
      }
      throw new Error(`Tab never reached ${name}`);
    };
    await tabTo('New here? Create an account');
    await press('Enter');
    const username = uniqueUsername('keys');
    await tabTo('username');
    await page.keyboard.type(username);
    await press('Tab');
    await page.keyboard.type(`${username}@example.com`);
    await press('Tab');
    await page.keyboard.type(STRONG_PASSWORD);
    await press('Enter');
    await page.getByRole('button', { name: 'Log out' }).waitFor();
    await tabTo('New chat');
    await press('Enter');
    await page.getByLabel('Message').waitFor();
    await tabTo('Message');
    await page.keyboard.type('Typed without a mouse');
    await press('Enter');
    await textIs(lastAnswer(page).locator('.markdown'), answer);
    // Dark colours: the primary buttons' text is dark on their light blue, and every
    // text here is readable (WCAG AA).
    await page.getByRole('button', { name: 'Send' }).and(page.locator(':enabled')).waitFor();
    await expectReadable(page, 'Send');
    // Focus is visible where it lands.
    await tabTo('Regenerate');
    const outline = await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle');
    expect(outline).not.toBe('none');
    await context.close();
  });

  browserTest('no AI provider configured: the app says so in words, on a phone too', async () => {
    const offline = await startServer({ AI_TITLES: 'true' }, { offline: true });
    try {
      const { page, context, problems } = await newPage({ width: 375 });
      await registerThrough(page, offline.url);
      const note = page.getByRole('note');
      await note.waitFor();
      expect(await note.textContent()).toContain('built-in offline model');
      await page.getByRole('button', { name: 'Start a chat' }).click();
      // One long word (a pasted identifier, say) as the title (the offline model's is the
      // first words): it wraps rather than making the page scroll sideways.
      await sendMessage(page, `${'Supercalifragilistic_'.repeat(4)} Is anyone there?`);
      await lastAnswer(page).locator('.markdown', { hasText: 'Is anyone there?' }).waitFor();
      expect(await lastAnswer(page).textContent()).toContain('offline model');
      expect(await note.isVisible()).toBe(true);
      await page.locator('.conversation-title', { hasText: 'Supercalifragilistic_' }).waitFor();
      const overflow = await page.evaluate<number>(
        'document.documentElement.scrollWidth - window.innerWidth',
      );
      expect(overflow).toBeLessThanOrEqual(0);
      expect(problems).toEqual([]);
      await context.close();
    } finally {
      await offline.stop();
    }
  });

  browserTest(
    '375 px wide: nothing overflows, a chat starts from the empty page, the conversations open from the menu',
    async () => {
      const { page, context, problems } = await newPage({ width: 375 });
      await registerThrough(page);
      // The sidebar is behind its menu here, so the empty page offers a chat itself.
      await page.getByRole('button', { name: 'Start a chat' }).click();
      await sendMessage(page, 'Hello from a phone');
      await page.locator('article.assistant[data-status="complete"]').waitFor();
      await textIs(lastAnswer(page).locator('.markdown'), answer);
      const overflow = await page.evaluate<number>(
        'document.documentElement.scrollWidth - window.innerWidth',
      );
      expect(overflow).toBeLessThanOrEqual(0);
      expect(await page.getByRole('button', { name: 'Send' }).isVisible()).toBe(true);
      await page.screenshot({ path: `${SHOTS}/phone.png` });
      await page.getByRole('button', { name: /Chats/ }).click();
      await page.getByRole('navigation', { name: 'Conversations' }).waitFor();
      const first = page.url();
      await page.getByRole('button', { name: 'New chat' }).click();
      // The message box was already there: what shows the new chat is its address.
      await page.waitForURL((url) => url.href !== first && url.hash.length > 1);
      await page.getByRole('textbox', { name: 'Message' }).waitFor();
      await countIs(page.locator('article'), 0);
      expect(problems).toEqual([]);
      await context.close();
    },
  );
});
