import { SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { stringAttribute } from '../run-span-codec.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ERROR_TYPE_OTHER,
  OPERATION_CHAT,
  OPERATION_EXECUTE_TOOL,
  OPERATION_INVOKE_WORKFLOW,
  SPAN_INVOKE_WORKFLOW,
} from '../semconv.js';

/*
 * What the metrics and analytics processors read of a span besides its figures: its
 * operation, status and times. The figures (usage, cost, the run's totals) are decoded by
 * otel/run-span-codec.ts, the one decoder every processor shares.
 */

export type SpanOperation = typeof OPERATION_CHAT | typeof OPERATION_EXECUTE_TOOL | typeof OPERATION_INVOKE_WORKFLOW;

/**
 * The operation a span stands for: `gen_ai.operation.name`, or for a root span whose
 * start attributes were set after `onStart`, its name (`invoke_workflow <workflow>`).
 */
export const spanOperation = (span: { readonly name: string; readonly attributes: Attributes }): SpanOperation | undefined => {
  const operation = span.attributes[ATTR_GEN_AI_OPERATION_NAME];
  if (operation === OPERATION_CHAT || operation === OPERATION_EXECUTE_TOOL || operation === OPERATION_INVOKE_WORKFLOW) {
    return operation;
  }
  if (operation === undefined && (span.name === SPAN_INVOKE_WORKFLOW || span.name.startsWith(`${SPAN_INVOKE_WORKFLOW} `))) {
    return OPERATION_INVOKE_WORKFLOW;
  }
  return undefined;
};

export const isErrorSpan = (span: ReadableSpan): boolean => span.status.code === SpanStatusCode.ERROR;

/** `error.type` of a failed span, `_OTHER` when it names none. */
export const spanErrorType = (span: ReadableSpan): string => stringAttribute(span.attributes, ATTR_ERROR_TYPE) ?? ERROR_TYPE_OTHER;

const hrTimeToSeconds = (time: HrTime): number => time[0] + time[1] / 1e9;

export const spanDurationSeconds = (span: ReadableSpan): number => hrTimeToSeconds(span.duration);

export const spanDurationMs = (span: ReadableSpan): number => hrTimeToMilliseconds(span.duration);

export const spanEndEpochMs = (span: ReadableSpan): number => hrTimeToMilliseconds(span.endTime);

/** A key for one span that is unique across traces. */
export const spanKey = (span: { spanContext: () => { traceId: string; spanId: string } }): string => {
  const { traceId, spanId } = span.spanContext();
  return `${traceId}/${spanId}`;
};
