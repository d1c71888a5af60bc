import net from 'node:net';

/**
 * A hand-rolled WebSocket client over node:net whose reading can be paused, so a
 * test can play a client that stops reading (which a WebSocket object cannot).
 * It only understands what the tests need: unfragmented text frames.
 */
const TAIL_BYTES = 1024;

export const rawConnect = async (url: string) => {
  const { hostname, port, pathname } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64');
  socket.write(
    `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  // Chunks are kept as they come and joined only when the whole text is asked for:
  // joining on every read made a long answer (tens of MB of frames) quadratic.
  let chunks: Buffer[] = [];
  let tail = Buffer.alloc(0);
  let received = 0;
  let ended = false;
  socket.once('close', () => {
    ended = true;
  });
  const listeners: (() => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    chunks.push(chunk);
    tail = Buffer.concat([tail, chunk.subarray(-TAIL_BYTES)]).subarray(-TAIL_BYTES);
    for (const wake of listeners.splice(0)) wake();
  });
  const all = () => {
    if (chunks.length !== 1) chunks = [Buffer.concat(chunks)];
    return chunks[0] as Buffer;
  };
  const waitFor = async (predicate: () => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error('raw websocket: timed out');
      await new Promise<void>((wake) => {
        listeners.push(wake);
        setTimeout(wake, 50);
      });
    }
  };
  await waitFor(() => all().includes('\r\n\r\n'), 5000);
  const head = all();
  if (!head.toString('latin1').startsWith('HTTP/1.1 101')) throw new Error('raw websocket: upgrade refused');
  chunks = [head.subarray(head.indexOf('\r\n\r\n') + 4)];

  const sendText = (text: string) => {
    const payload = Buffer.from(text);
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const header =
      payload.length < 126
        ? Buffer.from([0x81, 0x80 | payload.length])
        : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
    socket.write(Buffer.concat([header, mask, masked]));
  };

  return {
    sendText,
    /** Raw bytes received so far, frames and all, decoded as text. */
    text: () => all().toString('utf8'),
    /** The last bytes received (about 1 KB), decoded as text: cheap to poll while a long answer arrives. */
    tail: () => tail.toString('utf8'),
    get bytesReceived() {
      return received;
    },
    /** The connection is closed (by either side). */
    get ended() {
      return ended;
    },
    /** The code of the close frame the received bytes end with, if they end with one. */
    closedWith: () => {
      for (let i = tail.length - 4; i >= 0; i--)
        if (tail[i] === 0x88 && i + 2 + (tail[i + 1] as number) === tail.length)
          return tail.readUInt16BE(i + 2);
      return undefined;
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    waitFor,
    destroy: () => socket.destroy(),
  };
};
