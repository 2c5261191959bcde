import { trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.js';

const CHINDINGS = pino.symbols.chindingsSym;

/**
 * Whether the logger (a request's child) already names a trace. Read from pino's
 * serialised bindings (`,"key":value` pairs) rather than `bindings()`, which parses them
 * as JSON again for every line.
 */
const boundToTrace = (logger: Logger): boolean => {
  const chindings = (logger as unknown as Record<symbol, unknown>)[CHINDINGS];
  return typeof chindings === 'string' ? chindings.includes(',"trace_id":') : 'trace_id' in logger.bindings();
};

/** The service's pino logger (stdout unless a destination is given); every component gets a child of it. */
export const createLogger = (config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger =>
  pino(
    {
      level: config.logLevel,
      base: { service: 'chatter' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Every line logged inside a traced request or run names its trace and span (the
      // active span's; a request's logger is bound to the request span's ids otherwise).
      mixin: (_merge, _level, logger) => {
        const span = trace.getActiveSpan();
        if (span === undefined || boundToTrace(logger)) {
          return {};
        }
        const { traceId, spanId } = span.spanContext();
        return { trace_id: traceId, span_id: spanId };
      },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'password', '*.password'], censor: '[redacted]' },
    },
    destination,
  );
