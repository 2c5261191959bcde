import type { FastifyInstance } from 'fastify';
import { RequestValidationError } from './errors.js';

type Issue = { loc: (string | number)[]; msg: string; type: string };

/**
 * A string PostgreSQL cannot store as sent: NUL is refused by `text` and `jsonb`
 * (a database error, so a 500), and a lone UTF-16 surrogate would be silently replaced
 * by U+FFFD on the way to UTF-8 (the user's text altered).
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const unstorable = (value: string): boolean => value.includes('\u0000') || LONE_SURROGATE.test(value);

type Node = { readonly value: unknown; readonly key: string | number | null; readonly parent: Node | null; readonly depth: number };

/** Deeper JSON is refused: serialising it back (JSON.stringify, jsonb) recurses once per level. */
export const MAX_BODY_DEPTH = 64;

/** A node's location, built only when needed (a deeply nested body must not cost a path copy per level). */
const locationOf = (node: Node, last?: string): (string | number)[] => {
  const reversed: (string | number)[] = last === undefined ? [] : [last];
  for (let current: Node | null = node; current !== null && current.key !== null; current = current.parent) {
    reversed.push(current.key);
  }
  return ['body', ...reversed.reverse()];
};

/** The first unstorable string or key in a parsed JSON body, walked without recursion. */
export const findUnstorableString = (body: unknown): Issue | null => {
  const stack: Node[] = [{ value: body, key: null, parent: null, depth: 0 }];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    const { value } = node;
    if (node.depth > MAX_BODY_DEPTH) {
      return { loc: locationOf(node), msg: `must not be nested more than ${MAX_BODY_DEPTH} levels deep`, type: 'too_deep' };
    }
    if (typeof value === 'string') {
      if (unstorable(value)) {
        return { loc: locationOf(node), msg: 'must not contain NUL characters or unpaired surrogates', type: 'string_unstorable' };
      }
    } else if (Array.isArray(value)) {
      for (let index = value.length - 1; index >= 0; index -= 1) {
        stack.push({ value: value[index], key: index, parent: node, depth: node.depth + 1 });
      }
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (unstorable(key)) {
          return { loc: locationOf(node, key), msg: 'keys must not contain NUL characters or unpaired surrogates', type: 'key_unstorable' };
        }
        stack.push({ value: item, key, parent: node, depth: node.depth + 1 });
      }
    }
  }
  return null;
};

/**
 * Rejects, before validation, JSON bodies holding strings the database cannot store
 * faithfully, or nested deeper than MAX_BODY_DEPTH: 422 in the contract's shape, and
 * nothing reaches a handler.
 */
export const registerBodyGuard = (app: FastifyInstance): void => {
  app.addHook('preValidation', async (request, reply) => {
    // Path parameters and query strings end up in SQL parameters too.
    for (const [where, values] of [
      ['path', request.params],
      ['query', request.query],
    ] as const) {
      if (values !== null && typeof values === 'object') {
        const issue = findUnstorableString(values);
        if (issue !== null) {
          return reply.status(422).send({ detail: [{ ...issue, loc: [where, ...issue.loc.slice(1)] }] });
        }
      }
    }
    if (request.body === undefined || request.body === null || typeof request.body !== 'object') {
      return;
    }
    const issue = findUnstorableString(request.body);
    if (issue !== null) {
      return reply.status(422).send({ detail: [issue] });
    }
  });
  // A query or path number such as `1e309` is coerced to Infinity and passes the schema's
  // integer and maximum checks: refused here, once coerced, before any handler sees it.
  app.addHook('preHandler', async (request, reply) => {
    for (const [where, values] of [
      ['path', request.params],
      ['query', request.query],
    ] as const) {
      if (values === null || typeof values !== 'object') {
        continue;
      }
      for (const [key, value] of Object.entries(values)) {
        const items: unknown[] = Array.isArray(value) ? value : [value];
        if (items.some((item) => typeof item === 'number' && !Number.isFinite(item))) {
          return reply.status(422).send({ detail: [{ loc: [where, key], msg: 'must be a finite number', type: 'number_not_finite' }] });
        }
      }
    }
  });
};

/**
 * JSON bodies are decoded as strict UTF-8: bytes that are not UTF-8 are refused (422)
 * instead of being replaced by U+FFFD, which would store text the user never sent.
 * Parsing itself is Fastify's (prototype-poisoning checks included).
 */
export const registerStrictJsonParser = (app: FastifyInstance): void => {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const decoder = new TextDecoder('utf-8', { fatal: true });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    let text: string;
    try {
      text = decoder.decode(body as Buffer);
    } catch {
      done(new RequestValidationError([{ loc: ['body'], msg: 'The body is not valid UTF-8', type: 'utf8_invalid' }]), undefined);
      return;
    }
    parseJson(request, text, done);
  });
};
