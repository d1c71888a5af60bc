import { describe, expect, test } from 'bun:test';
import { FormatRegistry } from '@sinclair/typebox';
import { restoredFormats } from '../../src/lib/docs';

describe('string formats once the OpenAPI plugin is loaded', () => {
  test('uuid, email and url are checked by the restored patterns, not the plugin’s per-call zod schemas', () => {
    for (const name of ['uuid', 'email', 'url']) {
      const restored = restoredFormats.get(name);
      expect(restored).toBeFunction();
      expect(FormatRegistry.Get(name)).toBe(restored as (value: string) => boolean);
    }
  });

  test('the restored checks still accept and refuse what they should', () => {
    const uuid = FormatRegistry.Get('uuid') as (value: string) => boolean;
    expect(uuid(crypto.randomUUID())).toBe(true);
    expect(uuid(Bun.randomUUIDv7())).toBe(true);
    expect(uuid('not-a-uuid')).toBe(false);
    expect(uuid(`${crypto.randomUUID()}x`)).toBe(false);
    // Elysia's own takes this prefix; PostgreSQL does not (a 500 once).
    expect(uuid(`urn:uuid:${crypto.randomUUID()}`)).toBe(false);
    expect(uuid(crypto.randomUUID().toUpperCase())).toBe(true);
    const email = FormatRegistry.Get('email') as (value: string) => boolean;
    expect(email('alice@example.com')).toBe(true);
    expect(email('alice@')).toBe(false);
    expect(email('alice example.com')).toBe(false);
    // Django's EmailValidator: a domain in another script is checked as punycode; a
    // domain needs a dot unless it is localhost or an IP literal.
    for (const taken of [
      'zoe@exämple.com',
      'li@例子.中国',
      'x@localhost',
      'x@[127.0.0.1]',
      '"a\\ b"@example.com',
    ])
      expect({ taken, ok: email(taken) }).toEqual({ taken, ok: true });
    for (const refused of [
      'x@example',
      '用户@example.com',
      'a..b@example.com',
      'x@[1.2.3]',
      '"a\u0001"@example.com',
    ])
      expect({ refused, ok: email(refused) }).toEqual({ refused, ok: false });
  });
});
