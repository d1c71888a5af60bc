import { t } from 'elysia';
import { unprocessable } from './errors';

/**
 * Whole-number query parameters (`limit`, `offset`, `days`): taken as digit strings
 * and range-checked by `wholeNumberIn`, because Elysia's own numeric coercion reports
 * a failure without naming the parameter. Either check refuses with the same words.
 */

const rangeText = (min: number, max: number) =>
  max === Number.MAX_SAFE_INTEGER
    ? `Must be a whole number, ${min} or more.`
    : `Must be a whole number from ${min} to ${max}.`;

/** The schema of such a parameter; `1.5`, `-1`, `1e2` or an empty value say the range. */
export const wholeNumber = (
  min: number,
  max: number,
  options: { description: string; examples?: string[] },
) => t.String({ pattern: '^[0-9]+$', error: rangeText(min, max), ...options });

/**
 * Its value, or `fallback` when it was not given; out of range → 422 naming it. A
 * parameter without a bound of its own (an offset) takes any whole number: one past
 * what a number holds exactly is read as the largest it does (a page past the end).
 */
export const wholeNumberIn = (
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
) => {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (value >= min && value <= max) return value;
  if (max === Number.MAX_SAFE_INTEGER && value > max) return max;
  throw unprocessable([{ loc: ['query', name], msg: rangeText(min, max), type: 'value_error' }]);
};
