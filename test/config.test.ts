import { describe, expect, test } from 'bun:test';
import { variableTable } from '../scripts/config-table';
import { ConfigError, loadConfig, VARIABLES } from '../src/config';
import { createPasswords } from '../src/modules/auth/password';

const productionEnv = {
  NODE_ENV: 'production',
  SECRET_KEY: 's'.repeat(50),
  JWT_SECRET_KEY: 'j'.repeat(32),
  OPENAI_API_KEY: 'sk-live',
};

const failure = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
};

describe('configuration', () => {
  test('has the SPEC defaults', () => {
    const config = loadConfig({});
    expect(config.port).toBe(8000);
    expect(config.host).toBe('0.0.0.0');
    expect(config.production).toBe(false);
    expect(config.jwt.accessMinutes).toBe(15);
    expect(config.jwt.refreshDays).toBe(7);
    expect(config.allowedHosts).toEqual(['localhost', '127.0.0.1']);
    expect(config.corsOrigins).toEqual(['http://localhost:3000']);
    expect(config.database).toEqual({ kind: 'pglite', dataDir: './data/pglite' });
    expect(config.redisUrl).toBeUndefined();
    expect(config.ai.model).toBe('gpt-4o-mini');
    expect(config.ai.timeoutSeconds).toBe(60);
    expect(config.ai.maxContextTokens).toBe(8000);
    expect(config.chat).toEqual({
      maxMessageLength: 4000,
      rateLimit: 20,
      rateWindowSeconds: 60,
      stopOnDisconnect: false,
    });
    expect(config.ws).toEqual({ authTimeoutSeconds: 30, heartbeatSeconds: 30, maxPayloadBytes: 65536 });
    expect(config.login).toEqual({ maxFailures: 5, lockoutMinutes: 15 });
    expect(config.http).toEqual({ maxBodyBytes: 1048576 });
    expect(config.trustProxy).toBe(false);
    expect(config.shutdownGraceSeconds).toBe(10);
  });

  test('chooses the database from DATABASE_URL', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h/db' }).database).toEqual({
      kind: 'postgres',
      url: 'postgres://u@h/db',
    });
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@h/db' }).database.kind).toBe('postgres');
    expect(loadConfig({ DATABASE_URL: 'memory://' }).database).toEqual({
      kind: 'pglite',
      dataDir: 'memory://',
    });
  });

  test.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['DEBUG', 'maybe'],
    ['JWT_ACCESS_TOKEN_EXPIRE_MINUTES', '0'],
    ['AI_TIMEOUT_SECONDS', '1.5'],
    ['CHAT_RATE_LIMIT', '-1'],
    ['DATABASE_URL', 'mysql://x'],
    ['REDIS_URL', 'http://x'],
    ['OPENAI_BASE_URL', 'not a url'],
    ['CORS_ALLOWED_ORIGINS', 'not an origin'],
    ['CORS_ALLOWED_ORIGINS', 'http://localhost:3000/'],
    ['CORS_ALLOWED_ORIGINS', 'localhost:3000'],
    ['CORS_ALLOWED_ORIGINS', 'https://app.example.com/chat'],
    ['CORS_ALLOWED_ORIGINS', 'HTTPS://App.example.com'],
    ['ALLOWED_HOSTS', 'api.example.com:8443'],
    ['ALLOWED_HOSTS', 'https://api.example.com'],
    ['ALLOWED_HOSTS', 'api.example.com/chat'],
    ['ALLOWED_HOSTS', '::1'],
    ['NODE_ENV', 'staging'],
    ['LOG_LEVEL', 'loud'],
    ['JWT_SECRET_KEY', 'too-short'],
    ['TRUST_PROXY', '2'],
    ['HTTP_MAX_BODY_BYTES', '100'],
    ['HTTP_MAX_BODY_BYTES', 'lots'],
    ['AI_MODELS', 'only-another-model'],
    ['AI_TITLES', 'sometimes'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'collector:4318'],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc'],
    ['OTEL_EXPORTER_OTLP_HEADERS', 'no-equals-sign'],
  ])('a bad %s=%j stops start-up with a message naming it', (variable, value) => {
    const error = failure({ [variable]: value });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.variable).toBe(variable);
    expect(error.message).toStartWith(variable);
  });

  test('an origin written as a URL is refused with the origin it meant; origins and hosts as a browser sends them are taken', () => {
    expect(failure({ CORS_ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:3000/' }).message).toBe(
      'CORS_ALLOWED_ORIGINS: "http://localhost:3000/" is not an origin: scheme, host and port only, as a browser sends it (did you mean "http://localhost:3000"?)',
    );
    const config = loadConfig({
      CORS_ALLOWED_ORIGINS:
        'https://app.example.com, http://localhost:3000,http://[::1]:5173,chrome-extension://abcdef',
      ALLOWED_HOSTS: 'API.example.com,.example.org,[::1],127.0.0.1,*',
    });
    expect(config.corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:3000',
      'http://[::1]:5173',
      'chrome-extension://abcdef',
    ]);
    expect(config.allowedHosts).toEqual(['api.example.com', '.example.org', '[::1]', '127.0.0.1', '*']);
  });

  test.each(['SECRET_KEY', 'JWT_SECRET_KEY', 'OPENAI_API_KEY'])(
    'production refuses to start without %s',
    (variable) => {
      const env: Record<string, string> = { ...productionEnv };
      delete env[variable];
      expect(failure(env).variable).toBe(variable);
    },
  );

  test('production starts with strong secrets and a model key', () => {
    const config = loadConfig(productionEnv);
    expect(config.production).toBe(true);
    expect(config.jwt.secret).toBe(productionEnv.JWT_SECRET_KEY);
  });

  test('password hashing: Argon2id at 64 MiB and 2 passes by default; production refuses less than OWASP’s minimum', async () => {
    const settings = loadConfig({}).passwordHashing;
    expect(settings).toEqual({ memoryKib: 65536, timeCost: 2 });
    const hash = await createPasswords(settings).hash('Correct-Horse-9-Battery');
    expect(hash).toStartWith('$argon2id$v=19$m=65536,t=2,');
    // A hash made with other settings still verifies: they are written in it.
    const cheap = await createPasswords({ memoryKib: 1024, timeCost: 1 }).hash('Correct-Horse-9-Battery');
    expect(await createPasswords(settings).verify('Correct-Horse-9-Battery', cheap)).toBe(true);
    expect(await createPasswords(settings).verify('Wrong-Horse-9-Battery', cheap)).toBe(false);
    expect(failure({ ...productionEnv, PASSWORD_HASH_MEMORY_KIB: '19455' }).variable).toBe(
      'PASSWORD_HASH_MEMORY_KIB',
    );
    expect(failure({ ...productionEnv, PASSWORD_HASH_TIME_COST: '1' }).variable).toBe(
      'PASSWORD_HASH_TIME_COST',
    );
    expect(
      loadConfig({ ...productionEnv, PASSWORD_HASH_MEMORY_KIB: '19456' }).passwordHashing.memoryKib,
    ).toBe(19456);
    expect(failure({ PASSWORD_HASH_MEMORY_KIB: '1023' }).variable).toBe('PASSWORD_HASH_MEMORY_KIB');
  });

  test('blank values count as unset', () => {
    expect(loadConfig({ PORT: '  ', OPENAI_API_KEY: '' }).port).toBe(8000);
  });

  test('the README lists every variable exactly as the schema declares it', async () => {
    const readme = await Bun.file(new URL('../README.md', import.meta.url)).text();
    // `bun scripts/config-table.ts` prints the table to paste.
    expect(readme.includes(variableTable())).toBe(true);
    for (const name of Object.keys(VARIABLES.properties)) expect(readme).toContain(`| \`${name}\``);
  });

  test('.env.prod.example lists every variable', async () => {
    const example = await Bun.file(new URL('../.env.prod.example', import.meta.url)).text();
    const missing = Object.keys(VARIABLES.properties).filter(
      (name) => !new RegExp(`^#? ?${name}=`, 'm').test(example),
    );
    expect(missing).toEqual([]);
  });

  test('the process environment is read nowhere but here', async () => {
    const glob = new Bun.Glob('src/**/*.ts');
    const readers: string[] = [];
    for await (const file of glob.scan(new URL('..', import.meta.url).pathname))
      if (file !== 'src/config.ts' && (await Bun.file(file).text()).includes('process.env'))
        readers.push(file);
    expect(readers).toEqual([]);
  });

  test('AI_MODELS defaults to OPENAI_MODEL; traces go to the endpoint’s /v1/traces', () => {
    expect(loadConfig({ OPENAI_MODEL: 'm1' }).ai.models).toEqual(['m1']);
    expect(loadConfig({ OPENAI_MODEL: 'm1', AI_MODELS: 'm2, m1,m2' }).ai.models).toEqual(['m2', 'm1']);
    expect(loadConfig({}).tracing.url).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }).tracing).toMatchObject({
      url: 'http://c:4318/v1/traces',
      serviceName: 'chatbot-api',
    });
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom',
        OTEL_EXPORTER_OTLP_HEADERS: 'a=1,b=x%3Dy',
      }).tracing,
    ).toMatchObject({ url: 'http://c:4318/custom', headers: { a: '1', b: 'x=y' } });
  });
});
