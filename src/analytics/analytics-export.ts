/**
 * `POST /api/v1/analytics/export`: the analytics reports a client asked for, as one JSON
 * document or one CSV table, built from the same report bodies the report routes answer
 * (so an export's totals are the usage report's). Pure: the route reads the reports.
 */

/** The reports an export can hold, by the names the frontend sends in `metrics`. */
export const EXPORT_METRICS = ['usage', 'performance', 'conversations'] as const;
export type ExportMetric = (typeof EXPORT_METRICS)[number];
export const EXPORT_FORMATS = ['json', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export type ExportInput = {
  readonly exportId: string;
  readonly createdAt: Date;
  readonly window: { readonly from: Date; readonly to: Date };
  readonly reports: Readonly<Partial<Record<ExportMetric, Readonly<Record<string, unknown>>>>>;
};

/** `chatter-analytics-<from>-<to>.<ext>`, from the window's hours (UTC). */
export const exportFileName = (input: Pick<ExportInput, 'window'>, format: ExportFormat): string => {
  const stamp = (date: Date) => date.toISOString().slice(0, 13).replace(/[-T]/g, '');
  return `chatter-analytics-${stamp(input.window.from)}-${stamp(input.window.to)}.${format}`;
};

/** The JSON export: the contract's `AnalyticsExportResponse` fields, then the reports themselves. */
export const buildJsonExport = (input: ExportInput) => ({
  export_id: input.exportId,
  status: 'completed',
  download_url: null,
  created_at: input.createdAt.toISOString(),
  expires_at: null,
  format: 'json',
  start_date: input.window.from.toISOString(),
  end_date: input.window.to.toISOString(),
  metrics: Object.keys(input.reports),
  data: input.reports,
});

/**
 * A CSV field per RFC 4180 (quoted when it holds a comma, quote or line break). Text
 * that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is
 * prefixed with `'`; numbers are written as numbers.
 */
const field = (value: unknown): string => {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

/** One row per figure: nested maps (`tokens_by_model`, `performance_by_model.<model>`) as a key path. */
const rowsOf = (report: string, body: Readonly<Record<string, unknown>>): unknown[][] => {
  const rows: unknown[][] = [];
  const walk = (metric: string, path: string[], value: unknown): void => {
    if (value !== null && typeof value === 'object') {
      const entries = Array.isArray(value) ? value.map((item, index) => [String(index), item] as const) : Object.entries(value);
      for (const [key, inner] of entries) walk(metric, [...path, key], inner);
      return;
    }
    rows.push([report, metric, path.join('/'), value]);
  };
  for (const [metric, value] of Object.entries(body)) walk(metric, [], value);
  return rows;
};

/** The CSV export: `report,metric,key,value` rows, one per figure of each report, CRLF line ends. */
export const buildCsvExport = (input: ExportInput): string => {
  const rows: unknown[][] = [['report', 'metric', 'key', 'value']];
  for (const [report, body] of Object.entries(input.reports)) rows.push(...rowsOf(report, body ?? {}));
  return `${rows.map((row) => row.map(field).join(',')).join('\r\n')}\r\n`;
};
