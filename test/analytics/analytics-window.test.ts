import { describe, expect, it } from 'vitest';
import { parseIsoDateTime, resolveAnalyticsWindow } from '../../src/analytics/analytics-window.js';
import { RequestValidationError } from '../../src/http/errors.js';

const at = (iso: string) => Date.parse(iso);
const HOUR_MS = 3_600_000;

describe('parseIsoDateTime', () => {
  it('reads dates and date-times, without an offset as UTC', () => {
    expect(parseIsoDateTime('2025-03-01')).toBe(at('2025-03-01T00:00:00Z'));
    expect(parseIsoDateTime('2025-03-01T12:30')).toBe(at('2025-03-01T12:30:00Z'));
    expect(parseIsoDateTime('2025-03-01T12:30:15.250')).toBe(at('2025-03-01T12:30:15.250Z'));
    expect(parseIsoDateTime('2025-03-01 12:30:15Z')).toBe(at('2025-03-01T12:30:15Z'));
    expect(parseIsoDateTime('2025-03-01T12:30:15+02:00')).toBe(at('2025-03-01T10:30:15Z'));
    expect(parseIsoDateTime('2025-03-01T01:00:00-0130')).toBe(at('2025-03-01T02:30:00Z'));
    expect(parseIsoDateTime('2024-02-29')).toBe(at('2024-02-29T00:00:00Z'));
  });

  it('refuses impossible dates and anything that is not ISO 8601', () => {
    for (const text of [
      '2025-02-29',
      '2025-02-30',
      '2025-13-01',
      '2025-00-10',
      '2025-03-01T24:00',
      '2025-03-01T12:60',
      '2025-03-01T12:00+24:00',
      'yesterday',
      '1740787200000',
      '03/01/2025',
      '2025-3-1',
      '',
    ]) {
      expect(parseIsoDateTime(text), text).toBeNull();
    }
  });
});

describe('resolveAnalyticsWindow', () => {
  const now = at('2025-03-10T14:35:00Z');

  it('reads a period as the last N hourly buckets, the current one included', () => {
    const day = resolveAnalyticsWindow({ period: '24h' }, now);
    expect(day.from.toISOString()).toBe('2025-03-09T15:00:00.000Z');
    expect(day.to.toISOString()).toBe('2025-03-10T15:00:00.000Z');
    expect(day.elapsedMs).toBe(23 * HOUR_MS + 35 * 60_000);
    expect(day.days).toBe(1);
    const hour = resolveAnalyticsWindow({ period: '1h' }, now);
    expect([hour.from.toISOString(), hour.elapsedMs]).toEqual(['2025-03-10T14:00:00.000Z', 35 * 60_000]);
    expect(resolveAnalyticsWindow({}, now).days).toBe(7);
    expect(resolveAnalyticsWindow({ period: '90d' }, now).from.toISOString()).toBe('2024-12-10T15:00:00.000Z');
  });

  it('widens a date range to the hourly buckets it touches', () => {
    const range = resolveAnalyticsWindow({ start_date: '2025-03-01T10:20:00Z', end_date: '2025-03-03T08:10:00Z' }, now);
    expect(range.from.toISOString()).toBe('2025-03-01T10:00:00.000Z');
    expect(range.to.toISOString()).toBe('2025-03-03T09:00:00.000Z');
    expect(range.elapsedMs).toBe(range.to.getTime() - range.from.getTime());
    // Only the part already over counts for rates; an end in the future is allowed.
    const open = resolveAnalyticsWindow({ start_date: '2025-03-10' }, now);
    expect([open.from.toISOString(), open.to.toISOString(), open.elapsedMs]).toEqual([
      '2025-03-10T00:00:00.000Z',
      '2025-03-10T15:00:00.000Z',
      14 * HOUR_MS + 35 * 60_000,
    ]);
    const ending = resolveAnalyticsWindow({ end_date: '2025-03-05', period: '24h' }, now);
    expect([ending.from.toISOString(), ending.to.toISOString()]).toEqual(['2025-03-04T00:00:00.000Z', '2025-03-05T00:00:00.000Z']);
  });

  it('answers 422 for a bad date, an end not after the start, or more than 366 days', () => {
    const fieldOf = (query: Parameters<typeof resolveAnalyticsWindow>[0]): unknown => {
      try {
        resolveAnalyticsWindow(query, now);
      } catch (error) {
        expect(error).toBeInstanceOf(RequestValidationError);
        return (error as RequestValidationError).detail[0]?.loc;
      }
      return undefined;
    };
    expect(fieldOf({ start_date: 'soon' })).toEqual(['query', 'start_date']);
    expect(fieldOf({ end_date: '2025-02-30' })).toEqual(['query', 'end_date']);
    expect(fieldOf({ start_date: '2025-03-02', end_date: '2025-03-01' })).toEqual(['query', 'end_date']);
    expect(fieldOf({ start_date: '2025-03-11' })).toEqual(['query', 'start_date']); // after now, the default end
    expect(fieldOf({ start_date: '2024-01-01', end_date: '2025-01-01T00:00:01Z' })).toEqual(['query', 'start_date']);
    expect(fieldOf({ start_date: '2024-01-01', end_date: '2025-01-01' })).toBeUndefined(); // 366 days
  });
});
