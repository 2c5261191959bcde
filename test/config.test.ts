import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('defaults to 127.0.0.1:8000 on embedded PGlite under ./.chatter', () => {
    const config = loadConfig({});
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8000);
    expect(config.database.url).toBeUndefined();
    expect(config.database.dataDir).toBe('./.chatter');
    expect(config.providers.defaultProvider).toBe('local');
  });

  it('treats an empty DATABASE_URL as unset', () => {
    expect(loadConfig({ DATABASE_URL: '' }).database.url).toBeUndefined();
  });

  it('reads a PostgreSQL URL and numeric settings', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://u@db:5432/chatter', PORT: '9000', DATABASE_POOL_SIZE: '4' });
    expect(config.database.url).toBe('postgresql://u@db:5432/chatter');
    expect(config.port).toBe(9000);
    expect(config.database.poolSize).toBe(4);
  });

  it('reads the run heartbeat, staleness and cancel timeout, and refuses a staleness within two heartbeats', () => {
    expect(loadConfig({}).runControl).toEqual({ heartbeatIntervalMs: 15_000, staleAfterMs: 120_000, cancelAckTimeoutMs: 5_000 });
    expect(
      loadConfig({ RUN_HEARTBEAT_INTERVAL_MS: '500', RUN_STALE_AFTER_MS: '6000', RUN_CANCEL_ACK_TIMEOUT_MS: '2000' }).runControl,
    ).toEqual({ heartbeatIntervalMs: 500, staleAfterMs: 6_000, cancelAckTimeoutMs: 2_000 });
    expect(() => loadConfig({ RUN_HEARTBEAT_INTERVAL_MS: '1000', RUN_STALE_AFTER_MS: '2000' })).toThrow(/RUN_STALE_AFTER_MS=2000/);
    expect(() => loadConfig({ RUN_CANCEL_ACK_TIMEOUT_MS: '0' })).toThrow(ConfigError);
  });

  it('writes the released GenAI names unless OTEL_SEMCONV_STABILITY_OPT_IN lists gen_ai_latest_experimental', () => {
    expect(loadConfig({}).telemetry.genAiConventions).toBe('released');
    expect(loadConfig({ OTEL_SEMCONV_STABILITY_OPT_IN: 'http' }).telemetry.genAiConventions).toBe('released');
    expect(loadConfig({ OTEL_SEMCONV_STABILITY_OPT_IN: 'gen_ai_latest_experimental' }).telemetry.genAiConventions).toBe('latest');
    expect(loadConfig({ OTEL_SEMCONV_STABILITY_OPT_IN: 'http/dup, gen_ai_latest_experimental ,database' }).telemetry.genAiConventions).toBe(
      'latest',
    );
    expect(loadConfig({ OTEL_SEMCONV_STABILITY_OPT_IN: 'gen_ai_latest' }).telemetry.genAiConventions).toBe('released');
  });

  it('serves metrics unless OTEL_METRICS_EXPORTER or METRICS_ENABLED turns them off, and refuses a push exporter', () => {
    expect(loadConfig({}).telemetry.metricsEnabled).toBe(true);
    expect(loadConfig({ OTEL_METRICS_EXPORTER: 'prometheus', METRICS_ENABLED: 'false' }).telemetry.metricsEnabled).toBe(true);
    expect(loadConfig({ OTEL_METRICS_EXPORTER: 'none' }).telemetry.metricsEnabled).toBe(false);
    expect(loadConfig({ METRICS_ENABLED: 'false' }).telemetry.metricsEnabled).toBe(false);
    expect(() => loadConfig({ OTEL_METRICS_EXPORTER: 'otlp' })).toThrow(/OTEL_METRICS_EXPORTER="otlp"/);
  });

  it('names every bad variable with its value in one error', () => {
    let caught: unknown;
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.issues).toHaveLength(3);
    expect(error.message).toContain('PORT="eighty"');
    expect(error.message).toContain('DATABASE_URL="mysql://x": must be a postgres:// or postgresql:// URL');
    expect(error.message).toContain('LOG_LEVEL="loud"');
  });

  it('rejects out-of-range ports and pool sizes', () => {
    expect(() => loadConfig({ PORT: '70000' })).toThrow(ConfigError);
    expect(() => loadConfig({ DATABASE_POOL_SIZE: '0' })).toThrow(/DATABASE_POOL_SIZE/);
  });
});
