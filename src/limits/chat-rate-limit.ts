import { ulid } from '../ids.js';
import type { LimitStore } from './limit-store.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;

export type ChatLimits = { readonly chatPerMinute: number; readonly streamingPerMinute: number; readonly perHour: number };

export type ChatRateVerdict =
  { readonly allowed: true; readonly headers: Record<string, string> } | { readonly allowed: false; readonly retryAfterSeconds: number };

/**
 * Per-user chat limits (per minute, plain and streaming apart, and per hour for both),
 * counted in the shared limit store: the limit holds once across all instances. One
 * round trip per request; a refused request is taken back so it does not count.
 */
export const createChatRateLimiter = (options: { store: LimitStore; limits: ChatLimits; now?: () => number }) => {
  const { store, limits } = options;
  const now = options.now ?? Date.now;
  return {
    take: async (userId: string, streaming: boolean): Promise<ChatRateVerdict> => {
      const minuteLimit = streaming ? limits.streamingPerMinute : limits.chatPerMinute;
      const minute = { key: `chat:${streaming ? 'streaming' : 'plain'}:minute:${userId}`, windowMs: MINUTE, limit: minuteLimit };
      const hour = { key: `chat:hour:${userId}`, windowMs: HOUR, limit: limits.perHour };
      const event = { id: ulid(), at: now() };
      const [byMinute, byHour] = await store.hit([minute, hour], event);
      const retryAfterMs = Math.max(byMinute?.retryAfterMs ?? 0, byHour?.retryAfterMs ?? 0);
      if (retryAfterMs > 0) {
        await store.unhit([minute.key, hour.key], event);
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) };
      }
      return {
        allowed: true,
        headers: {
          'x-ratelimit-limit-minute': String(minuteLimit),
          'x-ratelimit-remaining-minute': String(Math.max(0, minuteLimit - (byMinute?.count ?? 0))),
          'x-ratelimit-limit-hour': String(limits.perHour),
          'x-ratelimit-remaining-hour': String(Math.max(0, limits.perHour - (byHour?.count ?? 0))),
        },
      };
    },
  };
};

export type ChatRateLimiter = ReturnType<typeof createChatRateLimiter>;
