import { RequestValidationError, type ValidationItem } from '../http/errors.js';
import { ANALYTICS_PERIOD_HOURS, type AnalyticsPeriod } from '../http/schemas/analytics-schemas.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** The longest range a request may ask for. */
export const MAX_RANGE_DAYS = 366;

/**
 * The hourly rollup buckets a request reads: `from <= bucket_start < to`, both on an
 * hour (the rollups have hour granularity).
 */
export type AnalyticsWindow = {
  readonly from: Date;
  readonly to: Date;
  /** The part of the window that has already happened (ms, ≥ 0): the base of per-minute rates. */
  readonly elapsedMs: number;
  /** The window's length in days, at least 1: the base of per-day averages. */
  readonly days: number;
};

export type WindowQuery = {
  readonly period?: AnalyticsPeriod | undefined;
  readonly start_date?: string | undefined;
  readonly end_date?: string | undefined;
};

const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/;

/**
 * Parses an ISO 8601 date (`2025-03-01`, midnight) or date-time (`2025-03-01T12:30:00`,
 * with an optional fraction and `Z`/`±hh:mm` offset; none means UTC) to epoch ms.
 * Returns null for anything else, impossible dates (`2025-02-30`) included.
 */
export const parseIsoDateTime = (text: string): number | null => {
  const match = ISO_DATE_TIME.exec(text);
  if (match === null) return null;
  const [, year, month, day, hour = '0', minute = '0', second = '0', fraction = '', , sign, offsetHours, offsetMinutes] = match;
  const parts = [year, month, day, hour, minute, second].map(Number) as [number, number, number, number, number, number];
  const [y, mo, d, h, mi, s] = parts;
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || s > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
  date.setUTCHours(h, mi, s, Math.floor(Number(`0.${fraction || '0'}`) * 1000));
  if (sign === undefined) return date.getTime();
  const offsetH = Number(offsetHours);
  const offsetM = Number(offsetMinutes);
  if (offsetH > 23 || offsetM > 59) return null;
  const offsetMs = (offsetH * 60 + offsetM) * MINUTE_MS * (sign === '-' ? -1 : 1);
  return date.getTime() - offsetMs;
};

const floorHour = (epochMs: number): number => Math.floor(epochMs / HOUR_MS) * HOUR_MS;
const ceilHour = (epochMs: number): number => Math.ceil(epochMs / HOUR_MS) * HOUR_MS;

const invalid = (field: string, msg: string, type = 'value_error'): ValidationItem => ({ loc: ['query', field], msg, type });

const parseDate = (field: 'start_date' | 'end_date', text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  const parsed = parseIsoDateTime(text);
  if (parsed === null) {
    throw new RequestValidationError([invalid(field, 'Input should be a valid ISO 8601 date or date-time', 'datetime_parsing')]);
  }
  return parsed;
};

const windowOf = (from: number, to: number, now: number): AnalyticsWindow => ({
  from: new Date(from),
  to: new Date(to),
  elapsedMs: Math.max(0, Math.min(now, to) - from),
  days: Math.max(1, (to - from) / DAY_MS),
});

/**
 * The rollup window of a request.
 *
 * - `period` (default 7d): the last N hourly buckets, the current one included, so
 *   `24h` at 14:35 reads 15:00 yesterday up to 15:00 today (the current hour so far).
 * - `start_date`/`end_date`: every bucket the range touches, `[floor(start), ceil(end))`;
 *   `end_date` defaults to now and, alone, ends a range of `period` hours.
 *
 * @throws RequestValidationError (422) for an unreadable date, an end not after the
 *   start, or a range longer than {@link MAX_RANGE_DAYS} days.
 */
export const resolveAnalyticsWindow = (query: WindowQuery, now: number): AnalyticsWindow => {
  const periodMs = ANALYTICS_PERIOD_HOURS[query.period ?? '7d'] * HOUR_MS;
  const start = parseDate('start_date', query.start_date);
  const end = parseDate('end_date', query.end_date);
  if (start === undefined && end === undefined) {
    const to = floorHour(now) + HOUR_MS;
    return windowOf(to - periodMs, to, now);
  }
  const until = end ?? now;
  const since = start ?? until - periodMs;
  if (until <= since) {
    throw new RequestValidationError([invalid(end === undefined ? 'start_date' : 'end_date', 'end_date must be after start_date')]);
  }
  if (until - since > MAX_RANGE_DAYS * DAY_MS) {
    throw new RequestValidationError([invalid('start_date', `The range may span at most ${MAX_RANGE_DAYS} days`)]);
  }
  return windowOf(floorHour(since), ceilHour(until), now);
};
