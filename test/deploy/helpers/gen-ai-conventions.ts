import { GEN_AI_METRICS, SEMCONV_OPT_IN_GEN_AI_LATEST, type GenAiConventions } from '../../../otel/semconv.js';

/** Both GenAI name sets the service can write (OTEL_SEMCONV_STABILITY_OPT_IN). */
export const GEN_AI_CONVENTIONS: readonly GenAiConventions[] = ['released', 'latest'];

/** The environment that makes the service write `conventions`' names. */
export const conventionsEnv = (conventions: GenAiConventions): Record<string, string> =>
  conventions === 'latest' ? { OTEL_SEMCONV_STABILITY_OPT_IN: SEMCONV_OPT_IN_GEN_AI_LATEST } : {};

export const otherConventions = (conventions: GenAiConventions): GenAiConventions => (conventions === 'latest' ? 'released' : 'latest');

/**
 * Whether a Prometheus metric name is one of `conventions`' GenAI metrics (the OTel name
 * with dots as underscores, or its `_total`, `_bucket`, `_sum`, `_count` series).
 */
export const isGenAiMetricOf = (conventions: GenAiConventions, name: string): boolean =>
  GEN_AI_METRICS[conventions].some((metric) => {
    const stem = metric.replaceAll('.', '_');
    return name === stem || name.startsWith(`${stem}_`);
  });
