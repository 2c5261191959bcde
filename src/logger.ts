import { trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

/** The service's pino logger; every component gets a child of it. */
export const createLogger = (config: Pick<Config, 'logLevel'>): Logger =>
  pino({
    level: config.logLevel,
    base: { service: 'chatter' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Every line logged inside a traced request or run names its trace and span.
    mixin: () => {
      const span = trace.getActiveSpan();
      if (span === undefined) {
        return {};
      }
      const { traceId, spanId } = span.spanContext();
      return { trace_id: traceId, span_id: spanId };
    },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'password', '*.password'], censor: '[redacted]' },
  });
