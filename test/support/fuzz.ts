/** Seeded generators of hostile JSON, so a failing fuzz case can be replayed. */

export const rng = (seed: number) => {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\uFEFF',
  '\uD800',
  '😀'.repeat(50),
  'Zoë 測試 مرحبا',
  "'; DROP TABLE users; --",
  '" OR 1=1 --',
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '{{7*7}}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, literally
  '${7*7}',
  '../../../etc/passwd',
  '%00%0a',
  'null',
  'true',
  '0',
  '-1',
  '1e309',
  'NaN',
  '__proto__',
  'constructor',
  'prototype',
  'x'.repeat(10_000),
];
const KEYS = [
  'type',
  'content',
  'token',
  'username',
  'email',
  'password',
  'refresh',
  'title',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'a',
  '',
];
const TYPES = [
  'auth',
  'chat.message',
  'pong',
  'ping',
  'chat.stream',
  'AUTH',
  '',
  ' auth',
  'hasOwnProperty',
  '__proto__',
];

const hostileValue = (random: () => number, depth = 0): unknown => {
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)] as T;
  const roll = random();
  if (depth > 3 || roll < 0.3)
    return pick([null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 63), ...NASTY_STRINGS]);
  if (roll < 0.45)
    return Array.from({ length: Math.floor(random() * 5) }, () => hostileValue(random, depth + 1));
  if (roll < 0.5) {
    // Deep nesting.
    let value: unknown = 'bottom';
    for (let i = 0; i < 200; i++) value = { a: value };
    return value;
  }
  const object: Record<string, unknown> = {};
  const keys = Math.floor(random() * 5);
  for (let i = 0; i < keys; i++) object[pick(KEYS)] = hostileValue(random, depth + 1);
  if (random() < 0.6) object.type = pick(TYPES);
  return object;
};

/** A frame or request body: usually JSON text of a hostile value, sometimes broken JSON. */
export const hostileText = (random: () => number) => {
  const roll = random();
  if (roll < 0.1) return '{"type": "auth", "token": ';
  if (roll < 0.15) return '\u0000\u0001\u0002';
  if (roll < 0.2) return '{"__proto__": {"polluted": true}, "type": "chat.message", "content": "x"}';
  if (roll < 0.25) return '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[';
  return JSON.stringify(hostileValue(random));
};
