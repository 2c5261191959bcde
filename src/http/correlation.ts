import type { IncomingMessage } from 'node:http';
import { propagation, trace, context as otelContext, type Context } from '@opentelemetry/api';
import type {} from '@fastify/otel';
import type { FastifyRequest } from 'fastify';
import { ulid } from '../ids.js';
import { ATTR_CORRELATION_ID, BAGGAGE_CORRELATION_ID } from '../../otel/semconv.js';

const VALID = /^[A-Za-z0-9._:-]{1,128}$/;

const header = (request: IncomingMessage, name: string): string | undefined => {
  const value = request.headers[name];
  return typeof value === 'string' && VALID.test(value) ? value : undefined;
};

/**
 * The request's correlation id: `x-correlation-id`, else `x-request-id`, else a new
 * ULID. Used as Fastify's request id, so every log line of the request carries it.
 * A malformed header value is replaced rather than echoed.
 */
export const correlationIdOf = (request: IncomingMessage): string =>
  header(request, 'x-correlation-id') ?? header(request, 'x-request-id') ?? ulid();

/**
 * Tags the request's span with the correlation id and returns the span's ids, which
 * every log line of the request carries.
 */
export const tagRequest = (request: FastifyRequest): { trace_id: string; span_id: string } | undefined => {
  const otel = typeof request.opentelemetry === 'function' ? request.opentelemetry() : undefined;
  const span = otel?.instrumented === true && otel.span !== null && otel.span !== undefined ? otel.span : trace.getActiveSpan();
  if (span === undefined) {
    return undefined;
  }
  span.setAttribute(ATTR_CORRELATION_ID, request.id);
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
};

/**
 * The context a run started by this request runs in: the request's span as parent,
 * the correlation id as baggage (so it propagates to anything called downstream).
 */
export const runParentContext = (request: FastifyRequest): Context => {
  const otel = typeof request.opentelemetry === 'function' ? request.opentelemetry() : undefined;
  const active = otel?.instrumented === true && otel.context !== null && otel.context !== undefined ? otel.context : otelContext.active();
  const baggage = (propagation.getBaggage(active) ?? propagation.createBaggage()).setEntry(BAGGAGE_CORRELATION_ID, {
    value: request.id,
  });
  return propagation.setBaggage(active, baggage);
};
