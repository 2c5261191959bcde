import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { SEMCONV_OPT_IN_GEN_AI_LATEST, type GenAiConventions } from '../otel/semconv.js';

/**
 * The only module of the service that reads `process.env`. Every component receives the
 * parsed config (or the slice it needs) through its factory, never the environment.
 * The exception is the standard `OTEL_*` variables, read by the OpenTelemetry SDK.
 */

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value));
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');

const EnvSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: port.default(8000),
  CHATTER_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: optionalString.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
  ),
  DATABASE_POOL_SIZE: positiveInt.max(100).default(10),
  DATABASE_STATEMENT_TIMEOUT_MS: positiveInt.default(30_000),
  DATABASE_ACQUIRE_TIMEOUT_MS: positiveInt.default(5_000),
  CHATTER_DATA_DIR: z.string().min(1).default('./.chatter'),
  CHATTER_INSTANCE_ID: optionalString,
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),
  // Run actor (see src/runtime).
  RUN_TIMEOUT_MS: positiveInt.default(120_000),
  MODEL_CALL_TIMEOUT_MS: positiveInt.default(60_000),
  MODEL_MAX_RETRIES: nonNegativeInt.max(10).default(3),
  MODEL_RETRY_BASE_MS: positiveInt.default(500),
  TOOL_CALL_LIMIT: positiveInt.default(10),
  // Remote tool servers (MCP, see src/tools/mcp-client-pool.ts).
  MCP_CONNECT_TIMEOUT_MS: positiveInt.default(10_000),
  MCP_TOOL_CALL_TIMEOUT_MS: positiveInt.default(30_000),
  // Group commit of what live runs report (see src/persistence/run-record-writer.ts).
  RUN_FLUSH_INTERVAL_MS: positiveInt.max(1_000).default(50),
  // Runs across instances (see src/runtime/run-liveness.ts and run-control.ts).
  RUN_HEARTBEAT_INTERVAL_MS: positiveInt.default(15_000),
  RUN_STALE_AFTER_MS: positiveInt.default(120_000),
  RUN_CANCEL_ACK_TIMEOUT_MS: positiveInt.default(5_000),
  // Providers.
  DEFAULT_PROVIDER: z.enum(['local', 'openai', 'anthropic']).default('local'),
  DEFAULT_MODEL: optionalString,
  LOCAL_MODEL_LATENCY_MS: nonNegativeInt.default(15),
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(z.url().optional()),
  ANTHROPIC_API_KEY: optionalString,
  ANTHROPIC_BASE_URL: optionalString.pipe(z.url().optional()),
  // Telemetry. The OpenTelemetry SDK reads the standard OTEL_* variables itself
  // (otel/tracing.ts); only those the service must act on are read here.
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
    .default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
  // The standard comma-separated opt-in list; other entries are for other instrumentations.
  OTEL_SEMCONV_STABILITY_OPT_IN: z
    .string()
    .default('')
    .transform((value): GenAiConventions =>
      value.split(',').some((entry) => entry.trim() === SEMCONV_OPT_IN_GEN_AI_LATEST) ? 'latest' : 'released',
    ),
  // Metrics are only served at GET /metrics (otel/metrics.ts): no OTLP push.
  OTEL_METRICS_EXPORTER: z.enum(['prometheus', 'none']).optional(),
  METRICS_ENABLED: bool.default(true),
  // Authentication.
  JWT_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  ACCESS_TOKEN_TTL_SECONDS: positiveInt.max(86_400).default(1800),
  REFRESH_TOKEN_TTL_SECONDS: positiveInt.default(7 * 24 * 3600),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: positiveInt.default(5),
  LOGIN_MAX_FAILURES_PER_IP: positiveInt.default(20),
  LOGIN_FAILURE_WINDOW_SECONDS: positiveInt.default(15 * 60),
  REGISTER_MAX_PER_IP: positiveInt.default(10),
  REGISTER_MAX_PER_EMAIL: positiveInt.default(5),
  REGISTER_WINDOW_SECONDS: positiveInt.default(3600),
  // Shared limits (chat rate limits, stream caps, login/register throttles).
  REDIS_URL: optionalString.pipe(
    z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional(),
  ),
  REDIS_KEY_PREFIX: z.string().max(64).default('chatter:'),
  STREAM_LEASE_TTL_SECONDS: positiveInt.min(3).max(3600).default(30),
  // HTTP.
  CORS_ORIGINS: optionalString.pipe(
    z
      .string()
      .transform((value) =>
        value
          .split(',')
          .map((origin) => origin.trim())
          .filter((origin) => origin !== ''),
      )
      .pipe(
        z.array(z.string().regex(/^https?:\/\/[^/*\s]+$/, 'must be comma-separated origins like https://app.example.com (no paths, no *)')),
      )
      .optional(),
  ),
  TRUST_PROXY: bool.default(false),
  CHAT_RATE_LIMIT_PER_MINUTE: positiveInt.default(30),
  CHAT_STREAMING_RATE_LIMIT_PER_MINUTE: positiveInt.default(20),
  CHAT_RATE_LIMIT_PER_HOUR: positiveInt.default(600),
});

export type Env = z.input<typeof EnvSchema>;

export type Config = {
  readonly host: string;
  readonly port: number;
  readonly environment: 'development' | 'test' | 'production';
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly database: {
    readonly url: string | undefined;
    readonly dataDir: string;
    readonly poolSize: number;
    readonly statementTimeoutMs: number;
    readonly acquireTimeoutMs: number;
  };
  readonly instanceId: string | undefined;
  readonly shutdownTimeoutMs: number;
  readonly runtime: {
    readonly runTimeoutMs: number;
    readonly modelCallTimeoutMs: number;
    readonly maxRetries: number;
    readonly retryBaseMs: number;
    readonly toolCallLimit: number;
  };
  /** Remote tool servers (MCP). */
  readonly mcp: {
    /** Longest a connection to an MCP server (transport and initialize) may take. */
    readonly connectTimeoutMs: number;
    /** Longest any request to an MCP server may take; a server's own `timeout` can only shorten it. */
    readonly toolCallTimeoutMs: number;
  };
  readonly runRecords: {
    /** The longest a live run's reported usage and events wait before they are committed. */
    readonly flushIntervalMs: number;
  };
  /** How instances keep their runs' rows live, take over stale ones and cancel each other's. */
  readonly runControl: {
    /** How often an instance heartbeats its live runs and sweeps stale ones. */
    readonly heartbeatIntervalMs: number;
    /** A live run whose row has not heartbeated for this long is taken over as interrupted. */
    readonly staleAfterMs: number;
    /** How long a cancel through another instance waits for the owner's acknowledgement. */
    readonly cancelAckTimeoutMs: number;
  };
  readonly providers: {
    readonly defaultProvider: 'local' | 'openai' | 'anthropic';
    readonly defaultModel: string | undefined;
    readonly localLatencyMs: number;
    readonly openai: { readonly apiKey: string | undefined; readonly baseUrl: string | undefined };
    readonly anthropic: { readonly apiKey: string | undefined; readonly baseUrl: string | undefined };
  };
  readonly telemetry: {
    /** Wrapped so that unsampled spans are still recorded: the SDK cannot be told that from the environment. */
    readonly sampler: z.output<typeof EnvSchema>['OTEL_TRACES_SAMPLER'];
    readonly samplerArg: number | undefined;
    readonly metricsEnabled: boolean;
    /** The GenAI names spans and metrics carry: `latest` with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental. */
    readonly genAiConventions: GenAiConventions;
  };
  readonly auth: {
    /** HS256 key of the access tokens. */
    readonly jwtSecret: string;
    /** True when JWT_SECRET was unset and a random one was made at start-up. */
    readonly jwtSecretGenerated: boolean;
    readonly accessTokenTtlSeconds: number;
    readonly refreshTokenTtlSeconds: number;
    readonly loginMaxFailuresPerAccount: number;
    readonly loginMaxFailuresPerIp: number;
    readonly loginFailureWindowSeconds: number;
    readonly registerMaxPerIp: number;
    readonly registerMaxPerEmail: number;
    readonly registerWindowSeconds: number;
  };
  /** Where per-user and per-address limits are counted (see src/limits). */
  readonly limits: {
    /** Redis when set; else PostgreSQL (DATABASE_URL), else memory (embedded PGlite, one instance). */
    readonly redisUrl: string | undefined;
    readonly redisKeyPrefix: string;
    /** An open stream's slot lapses this long after its instance last renewed it (crash). */
    readonly streamLeaseTtlSeconds: number;
  };
  readonly http: {
    /** Origins allowed by CORS; empty → no cross-origin access. */
    readonly corsOrigins: readonly string[];
    /** Take the client address from X-Forwarded-For (behind a reverse proxy). */
    readonly trustProxy: boolean;
  };
  /** Per-user chat request limits. */
  readonly chatLimits: {
    readonly chatPerMinute: number;
    readonly streamingPerMinute: number;
    readonly perHour: number;
  };
};

/** Origins of the usual local frontend dev servers (Vite, Create React App, Next). */
const DEVELOPMENT_CORS_ORIGINS = ['http://localhost:3000', 'http://127.0.0.1:3000', 'http://localhost:5173', 'http://127.0.0.1:5173'];

/** A configuration value that cannot be used; the message names every bad variable. */
export class ConfigError extends Error {
  public readonly issues: readonly string[];

  public constructor(issues: readonly string[]) {
    super(`Invalid configuration:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/**
 * Parses and validates the configuration.
 *
 * @throws ConfigError naming each variable whose value is invalid.
 */
export const loadConfig = (env: Readonly<Record<string, string | undefined>> = process.env): Config => {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = issue.path.join('.');
        const value = env[name];
        return `${name}=${value === undefined ? '(unset)' : JSON.stringify(value)}: ${issue.message}`;
      }),
    );
  }
  const e = parsed.data;
  if (e.CHATTER_ENV === 'production' && e.JWT_SECRET === undefined) {
    throw new ConfigError(['JWT_SECRET=(unset): required in production (at least 32 random characters, e.g. `openssl rand -base64 48`)']);
  }
  if (e.RUN_STALE_AFTER_MS <= 2 * e.RUN_HEARTBEAT_INTERVAL_MS) {
    throw new ConfigError([
      `RUN_STALE_AFTER_MS=${e.RUN_STALE_AFTER_MS}: must be more than twice RUN_HEARTBEAT_INTERVAL_MS (${e.RUN_HEARTBEAT_INTERVAL_MS}), or live runs are taken over between two heartbeats`,
    ]);
  }
  return {
    host: e.HOST,
    port: e.PORT,
    environment: e.CHATTER_ENV,
    logLevel: e.LOG_LEVEL,
    database: {
      url: e.DATABASE_URL,
      dataDir: e.CHATTER_DATA_DIR,
      poolSize: e.DATABASE_POOL_SIZE,
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      acquireTimeoutMs: e.DATABASE_ACQUIRE_TIMEOUT_MS,
    },
    instanceId: e.CHATTER_INSTANCE_ID,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    runtime: {
      runTimeoutMs: e.RUN_TIMEOUT_MS,
      modelCallTimeoutMs: e.MODEL_CALL_TIMEOUT_MS,
      maxRetries: e.MODEL_MAX_RETRIES,
      retryBaseMs: e.MODEL_RETRY_BASE_MS,
      toolCallLimit: e.TOOL_CALL_LIMIT,
    },
    mcp: { connectTimeoutMs: e.MCP_CONNECT_TIMEOUT_MS, toolCallTimeoutMs: e.MCP_TOOL_CALL_TIMEOUT_MS },
    runRecords: { flushIntervalMs: e.RUN_FLUSH_INTERVAL_MS },
    runControl: {
      heartbeatIntervalMs: e.RUN_HEARTBEAT_INTERVAL_MS,
      staleAfterMs: e.RUN_STALE_AFTER_MS,
      cancelAckTimeoutMs: e.RUN_CANCEL_ACK_TIMEOUT_MS,
    },
    providers: {
      defaultProvider: e.DEFAULT_PROVIDER,
      defaultModel: e.DEFAULT_MODEL,
      localLatencyMs: e.LOCAL_MODEL_LATENCY_MS,
      openai: { apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL },
      anthropic: { apiKey: e.ANTHROPIC_API_KEY, baseUrl: e.ANTHROPIC_BASE_URL },
    },
    telemetry: {
      sampler: e.OTEL_TRACES_SAMPLER,
      samplerArg: e.OTEL_TRACES_SAMPLER_ARG,
      metricsEnabled: e.OTEL_METRICS_EXPORTER === undefined ? e.METRICS_ENABLED : e.OTEL_METRICS_EXPORTER === 'prometheus',
      genAiConventions: e.OTEL_SEMCONV_STABILITY_OPT_IN,
    },
    auth: {
      // Development and tests without a secret get a random one: tokens then die with the process.
      jwtSecret: e.JWT_SECRET ?? randomBytes(48).toString('base64url'),
      jwtSecretGenerated: e.JWT_SECRET === undefined,
      accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlSeconds: e.REFRESH_TOKEN_TTL_SECONDS,
      loginMaxFailuresPerAccount: e.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      loginMaxFailuresPerIp: e.LOGIN_MAX_FAILURES_PER_IP,
      loginFailureWindowSeconds: e.LOGIN_FAILURE_WINDOW_SECONDS,
      registerMaxPerIp: e.REGISTER_MAX_PER_IP,
      registerMaxPerEmail: e.REGISTER_MAX_PER_EMAIL,
      registerWindowSeconds: e.REGISTER_WINDOW_SECONDS,
    },
    limits: { redisUrl: e.REDIS_URL, redisKeyPrefix: e.REDIS_KEY_PREFIX, streamLeaseTtlSeconds: e.STREAM_LEASE_TTL_SECONDS },
    http: {
      corsOrigins: e.CORS_ORIGINS ?? (e.CHATTER_ENV === 'production' ? [] : DEVELOPMENT_CORS_ORIGINS),
      trustProxy: e.TRUST_PROXY,
    },
    chatLimits: {
      chatPerMinute: e.CHAT_RATE_LIMIT_PER_MINUTE,
      streamingPerMinute: e.CHAT_STREAMING_RATE_LIMIT_PER_MINUTE,
      perHour: e.CHAT_RATE_LIMIT_PER_HOUR,
    },
  };
};
