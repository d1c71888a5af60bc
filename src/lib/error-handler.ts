import { Elysia, ValidationError } from 'elysia';
import { HttpError, SERVICE_UNAVAILABLE, type ValidationIssue } from './errors';
import {
  CHARACTER_NOT_IN_REPERTOIRE,
  describeError,
  hasSqlState,
  isOutage,
  STRING_DATA_RIGHT_TRUNCATION,
  UNTRANSLATABLE_CHARACTER,
} from './failures';
import { refusedBodyOf } from './input';
import type { Logger } from './logger';
import { requestIdOf } from './request-log';

/** A schema's own `error` text (e.g. `chars`), which reads better than TypeBox's. */
const ownMessage = (e: object) => {
  const schema = 'schema' in e ? (e.schema as { error?: unknown } | undefined) : undefined;
  return typeof schema?.error === 'string' ? schema.error : undefined;
};

interface FieldSchema {
  type?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
}

const atLeast = (n: number) => (n === 1 ? 'Must not be empty.' : `Must be at least ${n} characters.`);

/**
 * TypeBox's words for a field with no message of its own ("Expected property 'id' to
 * be string but found: [object Object]", "Property 'email' should be email"), said
 * of the field instead, as Django Ninja says them. Anything else keeps TypeBox's.
 */
const plainMessage = (schema: FieldSchema | undefined, value: unknown) => {
  if (value === undefined) return 'Field required.';
  switch (schema?.type) {
    case 'string':
      if (typeof value !== 'string') return 'Must be a string.';
      if (schema.format === 'email') return 'Enter a valid email address.';
      if (schema.format === 'uuid') return 'Must be a UUID.';
      if (schema.minLength !== undefined && value.length < schema.minLength) return atLeast(schema.minLength);
      if (schema.maxLength !== undefined && value.length > schema.maxLength)
        return `Must be at most ${schema.maxLength} characters.`;
      return undefined;
    case 'array':
      return Array.isArray(value) ? undefined : 'Must be an array.';
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value)
        ? undefined
        : 'Must be an object.';
    case 'integer':
      return Number.isInteger(value) ? undefined : 'Must be a whole number.';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'Must be true or false.';
    default:
      return undefined;
  }
};

const toIssues = (error: ValidationError): ValidationIssue[] => {
  const seen = new Set<string>();
  const issues = error.all.flatMap((e) => {
    // Array indexes as numbers, as Django Ninja puts them: ["body", "messages", 0, "parts"].
    const path =
      'path' in e && typeof e.path === 'string'
        ? e.path
            .split('/')
            .filter(Boolean)
            .map((part) => (/^\d+$/.test(part) ? Number(part) : part))
        : [];
    const value = 'value' in e ? e.value : undefined;
    const issue = {
      loc: [error.type, ...path],
      msg:
        ownMessage(e) ??
        plainMessage('schema' in e ? (e.schema as FieldSchema) : undefined, value) ??
        (('summary' in e && e.summary) || e.message || 'Invalid value'),
      type: value === undefined ? 'missing' : 'value_error',
    };
    // One schema can fail twice (length and pattern); it says so once.
    const key = JSON.stringify(issue);
    if (seen.has(key)) return [];
    seen.add(key);
    return [issue];
  });
  return issues.length ? issues : [{ loc: [error.type], msg: 'Invalid value', type: 'value_error' }];
};

/** What a text the database refused (should a check before it miss one) is told. */
const databaseRefusal = (error: unknown) => {
  if (hasSqlState(error, CHARACTER_NOT_IN_REPERTOIRE) || hasSqlState(error, UNTRANSLATABLE_CHARACTER))
    return 'Text the database cannot store';
  if (hasSqlState(error, STRING_DATA_RIGHT_TRUNCATION)) return 'A value is longer than its field allows';
  return undefined;
};

/**
 * The single mapping from anything thrown to SPEC §2's JSON bodies: domain errors
 * answer for themselves, validation is 422, malformed JSON 400, a method the path
 * does not take 405 (`allowed` names the ones it does), an unreachable database or
 * store 503, everything else 500 without a stack unless DEBUG.
 */
export const errorHandler = (log: Logger, debug: boolean, allowed: (path: string) => string[] = () => []) =>
  new Elysia({ name: 'error-handler' })
    .error({ HttpError })
    .onError({ as: 'global' }, ({ code, error, path, request, set }) => {
      // set.status too, so the request log sees the status of error responses.
      const reply = (status: number, body: unknown, headers?: Record<string, string>) => {
        set.status = status;
        return Response.json(body, { status, headers });
      };
      const answer = (domain: HttpError) => {
        set.status = domain.status;
        return domain.toResponse();
      };
      // Elysia wraps whatever a body parser throws (our 413 included) in a ParseError.
      const domain = error instanceof HttpError ? error : (error as { cause?: unknown }).cause;
      if (domain instanceof HttpError) return answer(domain);
      // A backstop behind the edge's checks (lib/input.ts): text PostgreSQL refused.
      const refusedText = databaseRefusal(error);
      if (refusedText)
        return reply(422, { detail: [{ loc: ['body'], msg: refusedText, type: 'value_error' }] });
      // A response that fails its own schema is our bug, not the client's.
      const ourFault = error instanceof ValidationError && error.type === 'response';
      if (!ourFault && (error instanceof ValidationError || code === 'VALIDATION')) {
        // A body refused at parsing (not JSON, not an object) answers for itself here,
        // once the route has authenticated the request (lib/input.ts).
        const refused = refusedBodyOf(request);
        return refused ? answer(refused) : reply(422, { detail: toIssues(error as ValidationError) });
      }
      if (code === 'PARSE') return reply(400, { detail: 'Malformed request body' });
      if (code === 'NOT_FOUND') {
        const methods = allowed(path);
        if (methods.length === 0) return reply(404, { detail: 'Not found' });
        return reply(405, { detail: 'Method not allowed' }, { allow: methods.join(', ') });
      }
      if (code === 'INVALID_COOKIE_SIGNATURE' || code === 'INVALID_FILE_TYPE')
        return reply(400, { detail: 'Bad request' });

      const unavailable = isOutage(error);
      log.error(
        { method: request.method, path, request_id: requestIdOf(request), error: describeError(error) },
        unavailable ? 'dependency unavailable' : 'unhandled error',
      );
      if (unavailable) return reply(503, { detail: SERVICE_UNAVAILABLE });
      const body: Record<string, unknown> = { detail: 'Internal server error' };
      if (debug && error instanceof Error) body.debug = { message: error.message, stack: error.stack };
      return reply(500, body);
    });
