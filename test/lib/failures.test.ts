import { describe, expect, test } from 'bun:test';
import { databaseProblem } from '../../src/lib/failures';

const failure = (code: string, wrapped = false) => {
  const error = Object.assign(new Error('connect failed'), { code });
  return wrapped ? new Error('query failed', { cause: error }) : error;
};

describe('databaseProblem: what stops start-up or a command, in words', () => {
  test.each([
    [failure('ECONNREFUSED'), 'the database DATABASE_URL names did not answer (ECONNREFUSED)'],
    [failure('28P01', true), "the database refused DATABASE_URL's user or password (28P01)"],
    [failure('28000'), "the database refused DATABASE_URL's user or password (28000)"],
    [failure('3D000', true), 'the database DATABASE_URL names does not exist (3D000)'],
  ])('%p → %s', (error, said) => {
    expect(databaseProblem(error)).toBe(said);
  });

  test('anything else is not a database problem: it is rethrown as it is', () => {
    expect(databaseProblem(failure('23505'))).toBeUndefined();
    expect(databaseProblem(new Error('no code'))).toBeUndefined();
    expect(databaseProblem('not an error')).toBeUndefined();
  });
});
