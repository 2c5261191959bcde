import { RequestValidationError, type ValidationItem } from '../http/errors.js';

/**
 * A profile setting chats cannot apply: which values may be stored (what the service does
 * anyway), and why. An update's null leaves a field that cannot be empty as it is.
 */
type UnappliedSetting = { readonly field: string; readonly accepts: (value: unknown) => boolean; readonly msg: string };

const unset = (value: unknown): boolean =>
  value === null ||
  (Array.isArray(value) && value.length === 0) ||
  (typeof value === 'object' && value !== null && Object.keys(value).length === 0);
const only =
  (...values: readonly unknown[]) =>
  (value: unknown): boolean =>
    values.includes(value);

const NOT_SENT = 'is not sent to the model providers by this service';
const NO_RETRIEVAL = 'this service stores no documents and has no retrieval';

/**
 * What chats do with a profile: provider, model, temperature, top_p, max_tokens,
 * context_window (input tokens sent), system prompt, memory_enabled, enable_tools and
 * available_tools apply to every chat that uses it. The settings below do not: each may
 * only hold the value that describes what chats do anyway (null or empty, or the
 * contract's default where that is the service's behaviour), so no stored setting is
 * silently ignored.
 */
const UNAPPLIED_SETTINGS: readonly UnappliedSetting[] = [
  { field: 'top_k', accepts: unset, msg: `top_k ${NOT_SENT} (OpenAI has no top-k)` },
  { field: 'presence_penalty', accepts: unset, msg: `presence_penalty ${NOT_SENT} (Anthropic has none)` },
  { field: 'frequency_penalty', accepts: unset, msg: `frequency_penalty ${NOT_SENT} (Anthropic has none)` },
  { field: 'seed', accepts: unset, msg: `seed ${NOT_SENT}` },
  { field: 'stop_sequences', accepts: unset, msg: `stop_sequences ${NOT_SENT}` },
  { field: 'logit_bias', accepts: unset, msg: `logit_bias ${NOT_SENT}` },
  { field: 'response_format', accepts: unset, msg: `response_format ${NOT_SENT}: answers are the model's text` },
  { field: 'safety_level', accepts: unset, msg: 'safety_level: this service applies no safety levels of its own' },
  {
    field: 'content_filter_enabled',
    accepts: only(true, null),
    msg: "content_filter_enabled: the providers' own content filtering always applies and cannot be turned off here",
  },
  {
    field: 'memory_strategy',
    accepts: unset,
    msg: 'memory_strategy: the history sent is the newest that fits context_window (memory_enabled: false sends none)',
  },
  {
    field: 'tool_choice',
    accepts: only(null, 'auto'),
    msg: "tool_choice: the model chooses among the offered tools ('auto'); narrow them with available_tools",
  },
  {
    field: 'stream_response',
    accepts: only(true, null),
    msg: 'stream_response: each request chooses streaming by its endpoint (/execute/chat or /execute/chat/streaming)',
  },
  { field: 'enable_retrieval', accepts: only(false, null), msg: `enable_retrieval: ${NO_RETRIEVAL}` },
  { field: 'retrieval_limit', accepts: only(5, null), msg: `retrieval_limit: ${NO_RETRIEVAL} (only the default, 5, is stored)` },
  {
    field: 'retrieval_score_threshold',
    accepts: only(0.7, null),
    msg: `retrieval_score_threshold: ${NO_RETRIEVAL} (only the default, 0.7, is stored)`,
  },
  { field: 'embedding_provider', accepts: unset, msg: `embedding_provider: ${NO_RETRIEVAL}, so no embeddings` },
  { field: 'embedding_model', accepts: unset, msg: `embedding_model: ${NO_RETRIEVAL}, so no embeddings` },
];

/**
 * Refuses a profile create or update body that sets what chats cannot apply (absent
 * fields keep their stored or default value).
 *
 * @throws RequestValidationError (422) naming each such field; nothing is stored.
 */
export const refuseUnappliedProfileSettings = (body: Readonly<Record<string, unknown>>): void => {
  const refused: ValidationItem[] = UNAPPLIED_SETTINGS.filter(({ field, accepts }) => field in body && !accepts(body[field])).map(
    ({ field, msg }) => ({ loc: ['body', field], msg, type: 'value_error.not_applied' }),
  );
  if (refused.length > 0) {
    throw new RequestValidationError(refused);
  }
};
