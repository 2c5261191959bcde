import { sql } from 'slonik';

/**
 * How a report's window splits over the two levels of the span rollups (migration 0014):
 * the whole UTC days inside it read day rows (span_hours 24), the partial days at its
 * ends read hour rows (span_hours 1). A window under a day long, or one that holds no
 * whole day, reads hour rows only.
 */
export type SpanRanges = {
  /** Whole days `[from, to)`, both at midnight UTC; null when the window holds none. */
  readonly days: { readonly from: Date; readonly to: Date } | null;
  /** Hour ranges `[from, to)` outside the whole days (none, one or two). */
  readonly hours: readonly { readonly from: Date; readonly to: Date }[];
};

const DAY_MS = 86_400_000;

/** The day and hour parts of `[from, to)` (both on an hour). */
export const spanRanges = (range: { readonly from: Date; readonly to: Date }): SpanRanges => {
  const from = range.from.getTime();
  const to = range.to.getTime();
  const firstDay = Math.ceil(from / DAY_MS) * DAY_MS;
  const endDay = Math.floor(to / DAY_MS) * DAY_MS;
  if (firstDay >= endDay) {
    return { days: null, hours: from < to ? [{ from: range.from, to: range.to }] : [] };
  }
  const hours = [
    { from, to: firstDay },
    { from: endDay, to },
  ].filter((part) => part.from < part.to);
  return {
    days: { from: new Date(firstDay), to: new Date(endDay) },
    hours: hours.map((part) => ({ from: new Date(part.from), to: new Date(part.to) })),
  };
};

const between = (part: { readonly from: Date; readonly to: Date }) =>
  sql.fragment`(bucket_start >= ${part.from.toISOString()}::timestamptz AND bucket_start < ${part.to.toISOString()}::timestamptz)`;

/** `bucket_start` within one of the hour ranges (false when there is none). */
export const hourRangesCondition = (ranges: SpanRanges) =>
  ranges.hours.length === 0 ? sql.fragment`false` : sql.fragment`(${sql.join(ranges.hours.map(between), sql.fragment` OR `)})`;

/** The rows of a span table (span_hours, bucket_start) that make up the window: day rows for its days, hour rows for the rest. */
export const spanCondition = (ranges: SpanRanges) =>
  sql.fragment`((span_hours = 1 AND ${hourRangesCondition(ranges)})${
    ranges.days === null ? sql.fragment`` : sql.fragment` OR (span_hours = 24 AND ${between(ranges.days)})`
  })`;
