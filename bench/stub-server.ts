/**
 * The OpenAI-compatible stub as its own process, so its work is not counted as the
 * server's. STUB_TOKENS tokens per answer, STUB_DELAY_MS before each token,
 * STUB_FIRST_DELAY_MS before the first. Prints its base URL on the first line.
 */
import { startOpenAIStub } from '../test/support/openai-stub';

const count = Number(process.env.STUB_TOKENS ?? 200);
const stub = startOpenAIStub({
  tokens: Array.from({ length: count }, (_, i) => ` tok${i}`),
  tokenDelayMs: Number(process.env.STUB_DELAY_MS ?? 0),
  firstTokenDelayMs: Number(process.env.STUB_FIRST_DELAY_MS ?? 0),
});
await stub.ready;
console.log(stub.url);
