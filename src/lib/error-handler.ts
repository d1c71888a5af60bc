import { Elysia, ValidationError } from 'elysia';
import { StoreUnavailableError } from '../store';
import { HttpError, SERVICE_UNAVAILABLE, type ValidationIssue } from './errors';
import { describeError, isDatabaseDown } from './failures';
import type { Logger } from './logger';

const toIssues = (error: ValidationError): ValidationIssue[] => {
  const issues = error.all.map((e) => {
    const path = 'path' in e && typeof e.path === 'string' ? e.path.split('/').filter(Boolean) : [];
    const value = 'value' in e ? e.value : undefined;
    return {
      loc: [error.type, ...path],
      msg: ('summary' in e && e.summary) || e.message || 'Invalid value',
      type: value === undefined ? 'missing' : 'value_error',
    };
  });
  return issues.length ? issues : [{ loc: [error.type], msg: 'Invalid value', type: 'value_error' }];
};

/**
 * The single mapping from anything thrown to SPEC §2's JSON bodies: domain errors
 * answer for themselves, validation is 422, malformed JSON 400, an unreachable
 * database or store 503, everything else 500 without a stack unless DEBUG.
 */
export const errorHandler = (log: Logger, debug: boolean) =>
  new Elysia({ name: 'error-handler' })
    .error({ HttpError })
    .onError({ as: 'global' }, ({ code, error, path, request }) => {
      if (error instanceof HttpError) return error.toResponse();
      // A response that fails its own schema is our bug, not the client's.
      const ourFault = error instanceof ValidationError && error.type === 'response';
      if (!ourFault && (error instanceof ValidationError || code === 'VALIDATION'))
        return Response.json({ detail: toIssues(error as ValidationError) }, { status: 422 });
      if (code === 'PARSE') return Response.json({ detail: 'Malformed request body' }, { status: 400 });
      if (code === 'NOT_FOUND') return Response.json({ detail: 'Not found' }, { status: 404 });
      if (code === 'INVALID_COOKIE_SIGNATURE' || code === 'INVALID_FILE_TYPE')
        return Response.json({ detail: 'Bad request' }, { status: 400 });

      const unavailable = error instanceof StoreUnavailableError || isDatabaseDown(error);
      log.error(
        { method: request.method, path, error: describeError(error) },
        unavailable ? 'dependency unavailable' : 'unhandled error',
      );
      if (unavailable) return Response.json({ detail: SERVICE_UNAVAILABLE }, { status: 503 });
      const body: Record<string, unknown> = { detail: 'Internal server error' };
      if (debug && error instanceof Error) body.debug = { message: error.message, stack: error.stack };
      return Response.json(body, { status: 500 });
    });
