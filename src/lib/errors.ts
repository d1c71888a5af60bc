/** One item of a 422 body, shaped like Django Ninja's. */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/**
 * A domain error that knows its HTTP answer. Registered once on the app with
 * `.error()`, so any module can throw it and the client gets `{detail, code?}`.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string | ValidationIssue[],
    readonly code?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof detail === 'string' ? detail : 'Validation failed');
    this.name = 'HttpError';
  }

  toResponse() {
    const body = this.code ? { detail: this.detail, code: this.code } : { detail: this.detail };
    return Response.json(body, { status: this.status, headers: this.headers });
  }
}

export const unprocessable = (issues: ValidationIssue[]) => new HttpError(422, issues);

export const notFound = (detail = 'Not found') => new HttpError(404, detail);

/** A wait as `Retry-After` counts it: whole seconds, rounded up, at least 1. */
export const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** A wait of `seconds` in words, for a refusal's text: "42 s", "5 min", "3 h 20 min", "2 h". */
export const waitInWords = (seconds: number) => {
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  const hours = `${Math.floor(minutes / 60)} h`;
  return minutes % 60 ? `${hours} ${minutes % 60} min` : hours;
};

export const SERVICE_UNAVAILABLE = 'Service temporarily unavailable';
