/**
 * The only reader of the environment. Every variable of SPEC §1 is parsed and
 * validated here once; a bad value stops start-up with a message naming it.
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

const readers = (env: Env) => {
  const raw = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const str = (name: string, fallback: string) => raw(name) ?? fallback;
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const value = raw(name);
    if (value === undefined) return fallback;
    if (!/^-?\d+$/.test(value)) throw new ConfigError(name, `must be an integer, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
    return n;
  };
  const bool = (name: string, fallback: boolean) => {
    const value = raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(value)) return true;
    if (['0', 'false', 'no', 'off'].includes(value)) return false;
    throw new ConfigError(name, `must be true or false, got "${value}"`);
  };
  const list = (name: string, fallback: string) =>
    str(name, fallback)
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
  const url = (name: string, protocols: string[]) => {
    const value = raw(name);
    if (value === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new ConfigError(name, 'is not a valid URL');
    }
    if (!protocols.includes(parsed.protocol))
      throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
    return value;
  };
  return { raw, str, int, bool, list, url };
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const logLevel = (value: string) => {
  const level = LOG_LEVELS.find((l) => l === value.toLowerCase());
  if (!level) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  return level;
};

export type DatabaseConfig =
  | { kind: 'postgres'; url: string }
  | { kind: 'pglite'; dataDir: string /* a directory, or memory:// */ };

export const loadConfig = (env: Env = process.env) => {
  const { raw, str, int, bool, list, url } = readers(env);

  const nodeEnv = str('NODE_ENV', 'development');
  if (!['development', 'production', 'test'].includes(nodeEnv))
    throw new ConfigError('NODE_ENV', `must be development, production or test, got "${nodeEnv}"`);
  const production = nodeEnv === 'production';

  const secretKey = raw('SECRET_KEY');
  const jwtSecretKey = raw('JWT_SECRET_KEY');
  const openaiApiKey = raw('OPENAI_API_KEY');
  if (production) {
    if (!secretKey) throw new ConfigError('SECRET_KEY', 'is required in production');
    if (!jwtSecretKey) throw new ConfigError('JWT_SECRET_KEY', 'is required in production');
    if (!openaiApiKey) throw new ConfigError('OPENAI_API_KEY', 'is required in production');
  }
  if (jwtSecretKey !== undefined && jwtSecretKey.length < 32)
    throw new ConfigError('JWT_SECRET_KEY', 'must be at least 32 characters');

  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:', 'memory:', 'file:']);
  let database: DatabaseConfig;
  if (databaseUrl === undefined) database = { kind: 'pglite', dataDir: './data/pglite' };
  else if (databaseUrl.startsWith('memory:')) database = { kind: 'pglite', dataDir: 'memory://' };
  else if (databaseUrl.startsWith('file:'))
    database = { kind: 'pglite', dataDir: databaseUrl.replace(/^file:(\/\/)?/, '') };
  else database = { kind: 'postgres', url: databaseUrl };

  const origins = list('CORS_ALLOWED_ORIGINS', 'http://localhost:3000');
  for (const origin of origins) {
    if (origin === '*') continue;
    try {
      new URL(origin);
    } catch {
      throw new ConfigError('CORS_ALLOWED_ORIGINS', `"${origin}" is not a valid origin`);
    }
  }

  const model = str('OPENAI_MODEL', 'gpt-4o-mini');
  const models = list('AI_MODELS', model);
  if (!models.includes(model))
    throw new ConfigError('AI_MODELS', `must include OPENAI_MODEL ("${model}"), got "${models.join(',')}"`);
  for (const name of models)
    if (name.length > 200)
      throw new ConfigError('AI_MODELS', `"${name.slice(0, 40)}…" is longer than 200 characters`);

  return {
    port: int('PORT', 8000, 0, 65535),
    host: str('HOST', '0.0.0.0'),
    nodeEnv,
    production,
    debug: bool('DEBUG', false),
    secretKey: secretKey ?? DEV_SECRET,
    jwt: {
      secret: jwtSecretKey ?? DEV_JWT_SECRET,
      accessMinutes: int('JWT_ACCESS_TOKEN_EXPIRE_MINUTES', 15, 1),
      refreshDays: int('JWT_REFRESH_TOKEN_EXPIRE_DAYS', 7, 1),
    },
    allowedHosts: list('ALLOWED_HOSTS', 'localhost,127.0.0.1').map((h) => h.toLowerCase()),
    corsOrigins: origins,
    database,
    redisUrl: url('REDIS_URL', ['redis:', 'rediss:']),
    redisKeyPrefix: str('REDIS_KEY_PREFIX', 'chatbot:'),
    ai: {
      apiKey: openaiApiKey,
      baseUrl: url('OPENAI_BASE_URL', ['http:', 'https:']),
      model,
      /** The models a conversation may choose (SPEC §12); OPENAI_MODEL is the default. */
      models: [...new Set(models)],
      titles: bool('AI_TITLES', true),
      /** Undefined: the conversation's own model writes its title. */
      titleModel: raw('AI_TITLE_MODEL'),
      timeoutSeconds: int('AI_TIMEOUT_SECONDS', 60, 1),
      systemPrompt: str('AI_SYSTEM_PROMPT', DEFAULT_SYSTEM_PROMPT),
      maxContextTokens: int('AI_MAX_CONTEXT_TOKENS', 8000, 100),
    },
    chat: {
      maxMessageLength: int('CHAT_MAX_MESSAGE_LENGTH', 4000, 1),
      rateLimit: int('CHAT_RATE_LIMIT', 20, 1),
      rateWindowSeconds: int('CHAT_RATE_WINDOW_SECONDS', 60, 1),
      stopOnDisconnect: bool('CHAT_STOP_ON_DISCONNECT', false),
    },
    ws: {
      authTimeoutSeconds: int('WS_AUTH_TIMEOUT_SECONDS', 30, 1),
      heartbeatSeconds: int('WS_HEARTBEAT_SECONDS', 30, 1),
      maxPayloadBytes: int('WS_MAX_PAYLOAD_BYTES', 65536, 1024, 16 * 1024 * 1024),
    },
    login: {
      maxFailures: int('LOGIN_MAX_FAILURES', 5, 1),
      lockoutMinutes: int('LOGIN_LOCKOUT_MINUTES', 15, 1),
    },
    http: { maxBodyBytes: int('HTTP_MAX_BODY_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024) },
    trustProxy: bool('TRUST_PROXY', false),
    shutdownGraceSeconds: int('SHUTDOWN_GRACE_SECONDS', 10, 0),
    logLevel: logLevel(str('LOG_LEVEL', bool('DEBUG', false) ? 'debug' : 'info')),
  };
};

export type Config = ReturnType<typeof loadConfig>;
