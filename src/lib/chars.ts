import { t } from 'elysia';

type StringOptions = Omit<NonNullable<Parameters<typeof t.String>[0]>, 'minLength' | 'maxLength'>;

// One character: a surrogate pair, or any one UTF-16 unit that does not start one. The
// alternatives never overlap, so matching cannot backtrack into one another.
const ONE_CHARACTER =
  '[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]|[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|[^\\uD800-\\uDBFF]';

const range = (min: number, max: number) => (min ? `${min} to ${max}` : `at most ${max}`);

/** What a refused `chars(min, max)` answers; `orNull` for `charsOrNull`. */
const charsMessage = (min: number, max: number, orNull = false) =>
  `Must be a string of ${range(min, max)} characters${orNull ? ', or null' : ''}.`;

/**
 * A string of `min` to `max` characters, counted as SPEC counts them (code points, as
 * Django and JSON Schema do), where TypeBox's `maxLength` counts UTF-16 units: 255
 * emoji are a 255-character title, not 510. `maxLength` stays as a bound (a character
 * is at most two units) that refuses a huge string before the pattern reads it.
 */
export const chars = (min: number, max: number, { description, ...options }: StringOptions = {}) =>
  t.String({
    ...options,
    // In words for the OpenAPI document, where maxLength reads twice the limit.
    description: [description, `${range(min, max)} characters (code points)`].filter(Boolean).join('; '),
    minLength: min,
    maxLength: 2 * max,
    pattern: `^(?:${ONE_CHARACTER}){${min},${max}}$`,
    error: charsMessage(min, max),
  });

/** `chars(0, max)` or null, refused with the same words. */
export const charsOrNull = (max: number, options: Parameters<typeof t.Union>[1] = {}) =>
  t.Union([chars(0, max), t.Null()], { ...options, error: charsMessage(0, max, true) });
