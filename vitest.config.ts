import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    // Each file opens its own database (a PGlite instance or a fresh PostgreSQL
    // database); PGlite's WASM start-up makes the first hook slow.
    hookTimeout: 60_000,
    testTimeout: 30_000,
    reporters: ['default'],
    // The OpenTelemetry SDK reads OTEL_* from process.env and exports to an OTLP
    // collector on localhost by default; the suite has none (tests that export say so).
    env: { OTEL_TRACES_EXPORTER: 'none' },
  },
});
