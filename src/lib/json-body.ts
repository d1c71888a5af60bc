import { Elysia, ParseError } from 'elysia';

// Keys no request body of ours uses, and which are either prototype-pollution
// vectors or break code that stringifies the value (Elysia's own validation error
// calls String(value), which throws on an object whose toString is not a function).
const DROPPED_KEYS = new Set([
  '__proto__',
  'constructor',
  'prototype',
  ...Object.getOwnPropertyNames(Object.prototype),
]);

const reviver = (key: string, value: unknown) => (DROPPED_KEYS.has(key) ? undefined : value);

/** Parses JSON request bodies ourselves: same result as Elysia's parser, minus those keys. */
export const jsonBody = () =>
  new Elysia({ name: 'json-body' }).onParse({ as: 'global' }, async ({ request, contentType }) => {
    if (!contentType?.startsWith('application/json')) return;
    const text = await request.text();
    try {
      return JSON.parse(text, reviver);
    } catch (error) {
      throw new ParseError(error as Error);
    }
  });
