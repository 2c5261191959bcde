/**
 * Runs `build` with the `OTEL_*` entries of `env` in `process.env`, then restores it.
 * The OpenTelemetry SDK reads those variables from the process environment when the
 * services are built (exporters, batching, resource), not from the parsed config.
 */
export const withOtelEnv = async <T>(env: Readonly<Record<string, string>>, build: () => Promise<T>): Promise<T> => {
  const entries = Object.entries(env).filter(([name]) => name.startsWith('OTEL_'));
  const saved = entries.map(([name]) => [name, process.env[name]] as const);
  for (const [name, value] of entries) {
    process.env[name] = value;
  }
  try {
    return await build();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) {
        delete process.env[name];
      } else {
        process.env[name] = value;
      }
    }
  }
};
