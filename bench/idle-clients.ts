/**
 * A load-generator process holding COUNT idle authenticated sockets to WS_URL
 * (several processes share the work: one process may hold only so many files).
 * Answers every ping with a pong. Reads commands on stdin: `report` prints
 * {"open":N,"pings":N}, `close` closes everything and exits.
 */
const url = process.env.WS_URL as string;
const token = process.env.TOKEN as string;
const count = Number(process.env.COUNT);
const sockets: WebSocket[] = [];
let open = 0;
let pings = 0;
let failed = 0;

const connectOne = () =>
  new Promise<void>((resolve) => {
    const ws = new WebSocket(url);
    let authed = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onmessage = (event) => {
      const data = String(event.data);
      if (data.includes('"ping"')) {
        pings++;
        ws.send('{"type":"pong"}');
      } else if (!authed && data.includes('auth.success')) {
        authed = true;
        open++;
        resolve();
      }
    };
    ws.onclose = () => {
      if (authed) open--;
      else failed++;
      resolve();
    };
    sockets.push(ws);
  });

for (let i = 0; i < count; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, count - i) }, connectOne));
}
console.log(JSON.stringify({ ready: open, failed }));

for await (const line of console) {
  if (line === 'report') console.log(JSON.stringify({ open, pings, failed }));
  if (line === 'close') {
    for (const ws of sockets) ws.close();
    await Bun.sleep(500);
    process.exit(0);
  }
}
