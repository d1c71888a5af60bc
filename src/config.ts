import { type Static, type TSchema, Type as t } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The only reader of the environment. Every variable is declared once, below, as a
 * TypeBox schema: its type, bounds, default and description. Validation, the typed
 * config and the README's variable table (`bun scripts/config-table.ts`, checked by
 * test/config.test.ts) all come from it; a bad value stops start-up with a message
 * naming the variable.
 */

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const DEV_SECRET = 'dev-only-secret-key-do-not-use-in-production';
const DEV_JWT_SECRET = 'dev-only-jwt-secret-key-do-not-use-in-production';
const DEFAULT_SYSTEM_PROMPT =
  'You are a helpful assistant. Answer clearly and concisely, and say so when you are not sure.';

/** What the README shows as the default when the value itself would say less. */
type Shown = { shown?: string };
const int = (description: string, fallback: number, minimum: number, maximum?: number, shown?: string) =>
  t.Integer({
    description,
    default: fallback,
    minimum,
    ...(maximum === undefined ? {} : { maximum }),
    shown,
  });
const bool = (description: string, fallback: boolean) => t.Boolean({ description, default: fallback });
const text = (description: string, fallback?: string, options: Shown & { minLength?: number } = {}) =>
  t.String({ description, ...(fallback === undefined ? {} : { default: fallback }), ...options });
const oneOf = <T extends string>(description: string, values: readonly T[], fallback?: T, shown?: string) =>
  t.Union(
    values.map((v) => t.Literal(v)),
    { description, ...(fallback === undefined ? {} : { default: fallback }), shown },
  );
/** A URL whose scheme is one of `protocols`. */
const url = (description: string, protocols: string[], shown?: string) =>
  t.String({ description, protocols, shown });
/** Comma-separated values. */
const list = (description: string, fallback: string, shown?: string) =>
  t.String({ description, default: fallback, list: true, shown });

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every variable the server reads, in the order the README lists them. */
export const VARIABLES = t.Object({
  PORT: int('listen port', 8000, 0, 65535),
  HOST: text('listen address', '0.0.0.0'),
  NODE_ENV: oneOf(
    '`development`, `test` or `production` (turns on the [production rules](#production-rules))',
    ['development', 'test', 'production'],
    'development',
  ),
  DEBUG: bool('verbose errors (500 bodies carry the message and stack) and debug logs', false),
  LOG_LEVEL: t.Optional(
    oneOf(
      '`fatal` `error` `warn` `info` `debug` `trace` `silent`',
      LOG_LEVELS,
      undefined,
      '`info` (`debug` with `DEBUG`)',
    ),
  ),
  SECRET_KEY: t.Optional(
    text('application secret (required in production)', undefined, { shown: 'dev-only value' }),
  ),
  JWT_SECRET_KEY: t.Optional(
    text('HS256 signing key, ≥ 32 characters (required in production)', undefined, {
      minLength: 32,
      shown: 'dev-only value',
    }),
  ),
  JWT_ACCESS_TOKEN_EXPIRE_MINUTES: int('access token lifetime, minutes', 15, 1),
  JWT_REFRESH_TOKEN_EXPIRE_DAYS: int('refresh token lifetime, days', 7, 1),
  ALLOWED_HOSTS: list(
    "comma-separated `Host` names accepted in production, as Django reads them: `*` for any, `.example.com` for that domain and its subdomains; no port (the Host header's is ignored), an IPv6 address in brackets",
    'localhost,127.0.0.1',
  ),
  CORS_ALLOWED_ORIGINS: list(
    'comma-separated origins for CORS and the WebSocket `Origin` check, as a browser sends them: `https://app.example.com`, no path or trailing slash; `*` for any',
    'http://localhost:3000',
  ),
  DATABASE_URL: t.Optional(
    url(
      '`postgres://…` → PostgreSQL; `memory://` → in-memory PGlite; `file://DIR` → PGlite in DIR; unset → PGlite in `./data/pglite`',
      ['postgres:', 'postgresql:', 'memory:', 'file:'],
      'embedded',
    ),
  ),
  DATABASE_WAIT_SECONDS: int(
    'how long start-up waits for a PostgreSQL that does not answer yet (started after the server) before giving up',
    30,
    0,
  ),
  REDIS_URL: t.Optional(
    url(
      '`redis://…` / `rediss://…` → Redis; unset → in-process store (single instance only; a warning is logged)',
      ['redis:', 'rediss:'],
      'in-process',
    ),
  ),
  REDIS_KEY_PREFIX: text('prefix of every Redis key, so several deployments can share one Redis', 'chatbot:'),
  OPENAI_API_KEY: t.Optional(
    text('key for the model provider (required in production)', undefined, { shown: '— (offline model)' }),
  ),
  OPENAI_BASE_URL: t.Optional(url('any OpenAI-compatible endpoint', ['http:', 'https:'], 'OpenAI')),
  OPENAI_MODEL: text('the default chat model', 'gpt-4o-mini'),
  AI_MODELS: t.Optional(
    list(
      'comma-separated models a conversation may choose (`GET /api/models`); must include `OPENAI_MODEL`',
      '',
      '`OPENAI_MODEL`',
    ),
  ),
  AI_TITLES: bool('automatic conversation titles after the first answer', true),
  AI_TITLE_MODEL: t.Optional(
    text('the model that writes titles', undefined, { shown: "the conversation's" }),
  ),
  AI_TIMEOUT_SECONDS: int('provider silent this long → `AI_TIMEOUT`', 60, 1),
  AI_SYSTEM_PROMPT: text('system prompt of conversations that set none', DEFAULT_SYSTEM_PROMPT, {
    shown: 'a short helpful-assistant prompt',
  }),
  AI_MAX_CONTEXT_TOKENS: int(
    'history sent to the model is trimmed, oldest first, to fit (o200k tokenizer)',
    8000,
    100,
  ),
  AI_MAX_ANSWER_CHARS: int(
    'longest answer kept: a provider still streaming past it is cut off (`AI_ERROR`, the answer stored `failed`)',
    500_000,
    100,
  ),
  CHAT_MAX_MESSAGE_LENGTH: int('characters (code points) per user message', 4000, 1),
  CHAT_RATE_LIMIT: int('accepted messages per sliding window, per user', 20, 1),
  CHAT_RATE_WINDOW_SECONDS: int('the rate limit’s window', 60, 1),
  CHAT_STOP_ON_DISCONNECT: bool(
    '`true`: the sender’s socket closing stops its answer; `false`: the answer finishes',
    false,
  ),
  QUOTA_DAILY_TOKENS: int(
    'prompt + completion tokens per user per UTC day; `0`: unlimited (staff may set a user’s own)',
    0,
    0,
  ),
  QUOTA_DAILY_MESSAGES: int(
    'accepted messages (regenerates and edits included) per user per UTC day; `0`: unlimited',
    0,
    0,
  ),
  WS_AUTH_TIMEOUT_SECONDS: int('in-band auth deadline', 30, 1),
  WS_HEARTBEAT_SECONDS: int('server ping interval; silent for two intervals → closed', 30, 1),
  WS_MAX_PAYLOAD_BYTES: int(
    'largest client frame accepted (larger → close 1009)',
    65536,
    1024,
    16 * 1024 * 1024,
  ),
  HTTP_MAX_BODY_BYTES: int(
    'largest HTTP request body accepted (larger → 413, before it is read)',
    1024 * 1024,
    1024,
    1024 * 1024 * 1024,
  ),
  PASSWORD_HASH_MEMORY_KIB: int(
    'Argon2id memory per password hash, KiB (production: at least 19456, OWASP’s minimum)',
    65536,
    1024,
    4 * 1024 * 1024,
  ),
  PASSWORD_HASH_TIME_COST: int('Argon2id passes per password hash (production: at least 2)', 2, 1, 10),
  LOGIN_MAX_FAILURES: int('failed logins per (username, client IP) before the lockout', 5, 1),
  LOGIN_LOCKOUT_MINUTES: int('how long a lockout lasts', 15, 1),
  TRUST_PROXY: bool(
    'honour `X-Forwarded-For` / `X-Forwarded-Proto` (only behind a proxy you control)',
    false,
  ),
  SHUTDOWN_GRACE_SECONDS: int('how long in-flight answers may finish after SIGTERM', 10, 0),
  METRICS_TOKEN: t.Optional(
    text('Bearer token `/metrics` requires; unset: open outside production, 404 in production', undefined, {
      shown: '—',
    }),
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: t.Optional(
    url('OpenTelemetry traces go to `<this>/v1/traces` over OTLP/HTTP when set', ['http:', 'https:'], 'off'),
  ),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: t.Optional(
    url('the full traces URL, instead of the one above', ['http:', 'https:'], '—'),
  ),
  OTEL_EXPORTER_OTLP_PROTOCOL: oneOf('OTLP encoding (JSON over HTTP)', ['http/json'], 'http/json'),
  OTEL_EXPORTER_OTLP_HEADERS: t.Optional(
    text('headers for the OTLP requests, `key=value,key2=value2`', undefined, { shown: '—' }),
  ),
  OTEL_SERVICE_NAME: text('`service.name` of the traces', 'chatbot-api'),
  BUN_JSC_useFTLJIT: t.Optional(
    oneOf(
      "JavaScriptCore's top-tier compiler (FTL); unset, the server restarts itself with `0`, which costs less CPU under load ([Performance](#performance)); `1` keeps it",
      ['0', '1', 'false', 'true'],
      undefined,
      'unset → `0`',
    ),
  ),
});

type Variables = Static<typeof VARIABLES>;
type Declared = TSchema & {
  description?: string;
  default?: unknown;
  shown?: string;
  protocols?: string[];
  list?: boolean;
  minLength?: number;
  minimum?: number;
  maximum?: number;
};

/** The schema of one variable, whether optional or not. */
export const declared = (name: string) => VARIABLES.properties[name as keyof Variables] as Declared;

/** One variable's raw text, checked and converted as its schema says; undefined when unset. */
const parse = (name: string, raw: string | undefined) => {
  const schema = declared(name);
  const value = raw === undefined || raw.trim() === '' ? undefined : raw.trim();
  if (value === undefined) return schema.default;
  if (schema.type === 'integer') {
    if (!/^-?\d+$/.test(value)) throw new ConfigError(name, `must be an integer, got "${value}"`);
    const n = Number(value);
    if (!Value.Check(schema, n))
      throw new ConfigError(
        name,
        `must be between ${schema.minimum} and ${schema.maximum ?? 'any'}, got ${n}`,
      );
    return n;
  }
  if (schema.type === 'boolean') {
    const word = value.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(word)) return true;
    if (['0', 'false', 'no', 'off'].includes(word)) return false;
    throw new ConfigError(name, `must be true or false, got "${value}"`);
  }
  const choices =
    schema.anyOf?.map((c: { const: string }) => c.const) ?? (schema.const ? [schema.const] : undefined);
  if (choices) {
    const choice = choices.find((c: string) => c === value.toLowerCase());
    if (choice === undefined)
      throw new ConfigError(name, `must be one of ${choices.join(', ')}, got "${value}"`);
    return choice;
  }
  if (schema.protocols) {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new ConfigError(name, 'is not a valid URL');
    }
    if (!schema.protocols.includes(parsed.protocol))
      throw new ConfigError(name, `must start with ${schema.protocols.map((p) => `${p}//`).join(' or ')}`);
    return value;
  }
  if (schema.minLength !== undefined && value.length < schema.minLength)
    throw new ConfigError(name, `must be at least ${schema.minLength} characters`);
  return value;
};

const listOf = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/**
 * `CORS_ALLOWED_ORIGINS`, each an origin as a browser sends it in `Origin`: scheme, host
 * and port, nothing after them. `http://localhost:3000/` or `localhost:3000` (a URL of
 * scheme "localhost:") would never match one, so every cross-origin request would be
 * refused unexplained.
 */
const originsOf = (value: string) => {
  const origins = listOf(value);
  for (const origin of origins) {
    if (origin === '*') continue;
    const parsed = URL.parse(origin);
    const web = parsed?.protocol === 'http:' || parsed?.protocol === 'https:';
    // Another scheme's origin (a browser extension's, say) has no standard form to compare.
    if (web ? parsed.origin === origin : /^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+$/.test(origin)) continue;
    throw new ConfigError(
      'CORS_ALLOWED_ORIGINS',
      `"${origin}" is not an origin: scheme, host and port only, as a browser sends it${
        web ? ` (did you mean "${parsed.origin}"?)` : ''
      }`,
    );
  }
  return origins;
};

/**
 * `ALLOWED_HOSTS`, lower-cased, as Django's setting holds them: the port is not part of
 * a name (a Host header's port is ignored), so "example.com:8000" would match nothing,
 * nor would a URL. An IPv6 address keeps its brackets.
 */
const allowedHostsOf = (value: string) => {
  const hosts = listOf(value).map((h) => h.toLowerCase());
  for (const host of hosts)
    if (/[/\\@\s]/.test(host) || /:/.test(host.replace(/^\[[0-9a-f:.]+\]$/, '')))
      throw new ConfigError(
        'ALLOWED_HOSTS',
        `"${host}" is not a host name: no scheme, port or path (an IPv6 address in brackets, e.g. "[::1]")`,
      );
  return hosts;
};

/**
 * The environment the server restarts itself with to run without JavaScriptCore's
 * FTL compiler (src/jit.ts), or undefined when `BUN_JSC_useFTLJIT` is set already
 * (kept as it is). Read before anything else loads, so not through `loadConfig`.
 */
export const environmentWithoutFtl = (env: Env = process.env): Env | undefined =>
  env.BUN_JSC_useFTLJIT === undefined ? { ...env, BUN_JSC_useFTLJIT: '0' } : undefined;

export type DatabaseConfig =
  | { kind: 'postgres'; url: string }
  | { kind: 'pglite'; dataDir: string /* a directory, or memory:// */ };

/** OWASP's least Argon2id settings (19 MiB, 2 passes): production may not go below. */
const OWASP_ARGON2 = { memoryKib: 19456, timeCost: 2 };

export const loadConfig = (env: Env = process.env) => {
  const raw = Object.fromEntries(
    Object.keys(VARIABLES.properties).map((name) => [name, parse(name, env[name])]),
  ) as Variables & Record<string, unknown>;
  const production = raw.NODE_ENV === 'production';
  if (production)
    for (const name of ['SECRET_KEY', 'JWT_SECRET_KEY', 'OPENAI_API_KEY'] as const)
      if (!raw[name]) throw new ConfigError(name, 'is required in production');
  // Cheaper hashing is for tests and development machines, never for real passwords.
  if (production && raw.PASSWORD_HASH_MEMORY_KIB < OWASP_ARGON2.memoryKib)
    throw new ConfigError(
      'PASSWORD_HASH_MEMORY_KIB',
      `must be at least ${OWASP_ARGON2.memoryKib} in production`,
    );
  if (production && raw.PASSWORD_HASH_TIME_COST < OWASP_ARGON2.timeCost)
    throw new ConfigError(
      'PASSWORD_HASH_TIME_COST',
      `must be at least ${OWASP_ARGON2.timeCost} in production`,
    );

  const databaseUrl = raw.DATABASE_URL;
  let database: DatabaseConfig;
  if (databaseUrl === undefined) database = { kind: 'pglite', dataDir: './data/pglite' };
  else if (databaseUrl.startsWith('memory:')) database = { kind: 'pglite', dataDir: 'memory://' };
  else if (databaseUrl.startsWith('file:'))
    database = { kind: 'pglite', dataDir: databaseUrl.replace(/^file:(\/\/)?/, '') };
  else database = { kind: 'postgres', url: databaseUrl };

  const origins = originsOf(raw.CORS_ALLOWED_ORIGINS);
  const allowedHosts = allowedHostsOf(raw.ALLOWED_HOSTS);

  const model = raw.OPENAI_MODEL;
  const models = raw.AI_MODELS ? listOf(raw.AI_MODELS) : [model];
  if (!models.includes(model))
    throw new ConfigError('AI_MODELS', `must include OPENAI_MODEL ("${model}"), got "${models.join(',')}"`);
  for (const name of models)
    if (name.length > 200)
      throw new ConfigError('AI_MODELS', `"${name.slice(0, 40)}…" is longer than 200 characters`);

  const otlpHeaders: Record<string, string> = {};
  for (const pair of listOf(raw.OTEL_EXPORTER_OTLP_HEADERS ?? '')) {
    const at = pair.indexOf('=');
    if (at < 1)
      throw new ConfigError('OTEL_EXPORTER_OTLP_HEADERS', 'must be key=value pairs separated by commas');
    otlpHeaders[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  const tracesUrl =
    raw.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (raw.OTEL_EXPORTER_OTLP_ENDPOINT
      ? `${raw.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`
      : undefined);

  return {
    port: raw.PORT,
    host: raw.HOST,
    nodeEnv: raw.NODE_ENV,
    production,
    debug: raw.DEBUG,
    secretKey: raw.SECRET_KEY ?? DEV_SECRET,
    jwt: {
      secret: raw.JWT_SECRET_KEY ?? DEV_JWT_SECRET,
      accessMinutes: raw.JWT_ACCESS_TOKEN_EXPIRE_MINUTES,
      refreshDays: raw.JWT_REFRESH_TOKEN_EXPIRE_DAYS,
    },
    allowedHosts,
    corsOrigins: origins,
    database,
    databaseWaitSeconds: raw.DATABASE_WAIT_SECONDS,
    redisUrl: raw.REDIS_URL,
    redisKeyPrefix: raw.REDIS_KEY_PREFIX,
    ai: {
      apiKey: raw.OPENAI_API_KEY,
      baseUrl: raw.OPENAI_BASE_URL,
      model,
      /** The models a conversation may choose (SPEC §12); OPENAI_MODEL is the default. */
      models: [...new Set(models)],
      titles: raw.AI_TITLES,
      /** Undefined: the conversation's own model writes its title. */
      titleModel: raw.AI_TITLE_MODEL,
      timeoutSeconds: raw.AI_TIMEOUT_SECONDS,
      systemPrompt: raw.AI_SYSTEM_PROMPT,
      maxContextTokens: raw.AI_MAX_CONTEXT_TOKENS,
      maxAnswerChars: raw.AI_MAX_ANSWER_CHARS,
    },
    chat: {
      maxMessageLength: raw.CHAT_MAX_MESSAGE_LENGTH,
      rateLimit: raw.CHAT_RATE_LIMIT,
      rateWindowSeconds: raw.CHAT_RATE_WINDOW_SECONDS,
      stopOnDisconnect: raw.CHAT_STOP_ON_DISCONNECT,
    },
    /** Per user per UTC day (SPEC §13); 0: unlimited. */
    quota: { dailyTokens: raw.QUOTA_DAILY_TOKENS, dailyMessages: raw.QUOTA_DAILY_MESSAGES },
    ws: {
      authTimeoutSeconds: raw.WS_AUTH_TIMEOUT_SECONDS,
      heartbeatSeconds: raw.WS_HEARTBEAT_SECONDS,
      maxPayloadBytes: raw.WS_MAX_PAYLOAD_BYTES,
    },
    login: { maxFailures: raw.LOGIN_MAX_FAILURES, lockoutMinutes: raw.LOGIN_LOCKOUT_MINUTES },
    passwordHashing: { memoryKib: raw.PASSWORD_HASH_MEMORY_KIB, timeCost: raw.PASSWORD_HASH_TIME_COST },
    http: { maxBodyBytes: raw.HTTP_MAX_BODY_BYTES },
    trustProxy: raw.TRUST_PROXY,
    shutdownGraceSeconds: raw.SHUTDOWN_GRACE_SECONDS,
    logLevel: raw.LOG_LEVEL ?? (raw.DEBUG ? 'debug' : 'info'),
    metrics: { token: raw.METRICS_TOKEN },
    tracing: { url: tracesUrl, headers: otlpHeaders, serviceName: raw.OTEL_SERVICE_NAME },
  };
};

export type Config = ReturnType<typeof loadConfig>;
