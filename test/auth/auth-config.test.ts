import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const SECRET = 'a'.repeat(32);

const configError = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      return error.message;
    }
    throw error;
  }
  throw new Error('expected a ConfigError');
};

describe('auth and HTTP configuration', () => {
  it('requires JWT_SECRET in production, with a clear message', () => {
    expect(configError({ CHATTER_ENV: 'production' })).toMatch(/JWT_SECRET=\(unset\): required in production/);
    expect(loadConfig({ CHATTER_ENV: 'production', JWT_SECRET: SECRET }).auth).toMatchObject({
      jwtSecret: SECRET,
      jwtSecretGenerated: false,
    });
  });

  it('refuses a JWT_SECRET shorter than 32 characters in any environment', () => {
    expect(configError({ JWT_SECRET: 'short' })).toMatch(/JWT_SECRET="short": must be at least 32 characters/);
    expect(configError({ CHATTER_ENV: 'production', JWT_SECRET: 'x'.repeat(31) })).toMatch(/JWT_SECRET/);
  });

  it('generates a random secret in development and tests when none is set', () => {
    const first = loadConfig({}).auth;
    const second = loadConfig({ CHATTER_ENV: 'test' }).auth;
    expect(first.jwtSecretGenerated).toBe(true);
    expect(first.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(first.jwtSecret).not.toBe(second.jwtSecret);
  });

  it('defaults to 30-minute access tokens, 7-day refresh tokens and 5/20 failures per 15 minutes', () => {
    expect(loadConfig({}).auth).toMatchObject({
      accessTokenTtlSeconds: 1800,
      refreshTokenTtlSeconds: 604800,
      loginMaxFailuresPerAccount: 5,
      loginMaxFailuresPerIp: 20,
      loginFailureWindowSeconds: 900,
    });
  });

  it('reads CORS_ORIGINS as a comma-separated list of origins and refuses wildcards and paths', () => {
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example.com, http://localhost:3000' }).http.corsOrigins).toEqual([
      'https://a.example.com',
      'http://localhost:3000',
    ]);
    expect(configError({ CORS_ORIGINS: '*' })).toMatch(/CORS_ORIGINS/);
    expect(configError({ CORS_ORIGINS: 'https://a.example.com/app' })).toMatch(/CORS_ORIGINS/);
    expect(loadConfig({ CHATTER_ENV: 'production', JWT_SECRET: SECRET }).http.corsOrigins).toEqual([]);
    expect(loadConfig({}).http.corsOrigins).toContain('http://localhost:5173');
    expect(loadConfig({}).http.corsOrigins.some((origin) => origin.includes('*'))).toBe(false);
  });
});
