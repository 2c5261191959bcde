import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The parts of a Grafana dashboard JSON model the checks read. */
export type Datasource = { readonly type?: string; readonly uid?: string };
export type Target = { readonly refId?: string; readonly datasource?: Datasource; readonly expr?: string; readonly rawSql?: string };
export type Panel = {
  readonly id?: number;
  readonly title?: string;
  readonly type?: string;
  readonly datasource?: Datasource | null;
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
};
export type Variable = {
  readonly name: string;
  readonly type: string;
  readonly datasource?: Datasource | null;
  readonly query?: string | { readonly query?: string };
  readonly includeAll?: boolean;
  readonly multi?: boolean;
  readonly allValue?: string | null;
};
export type Dashboard = {
  readonly uid: string;
  readonly title: string;
  readonly tags?: readonly string[];
  readonly panels: readonly Panel[];
  readonly templating?: { readonly list: readonly Variable[] };
};

export type Query = {
  /** Where it comes from, for messages: `<file> › <panel title> › <refId>`. */
  readonly where: string;
  readonly kind: 'prometheus' | 'postgres';
  readonly text: string;
};

export const PROMETHEUS_TYPE = 'prometheus';
export const POSTGRES_TYPES: ReadonlySet<string> = new Set(['grafana-postgresql-datasource', 'postgres']);

/** Every dashboard JSON in `directory`, parsed, with its file name. */
export const loadDashboards = (directory: string): { file: string; dashboard: Dashboard }[] =>
  readdirSync(directory)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(directory, file), 'utf8')) as Dashboard }));

/** Panels including those nested in rows. */
export const allPanels = (dashboard: Dashboard): Panel[] => dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);

const variableQuery = (variable: Variable): string | undefined =>
  typeof variable.query === 'string' ? variable.query : variable.query?.query;

/** Every query of a dashboard: panel targets (expr, rawSql) and query variables. */
export const dashboardQueries = (file: string, dashboard: Dashboard): Query[] => {
  const queries: Query[] = [];
  for (const panel of allPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      const type = target.datasource?.type ?? panel.datasource?.type;
      const where = `${file} › ${panel.title ?? `panel ${panel.id ?? '?'}`} › ${target.refId ?? '?'}`;
      if (target.expr !== undefined && type === PROMETHEUS_TYPE) {
        queries.push({ where, kind: 'prometheus', text: target.expr });
      } else if (target.rawSql !== undefined && type !== undefined && POSTGRES_TYPES.has(type)) {
        queries.push({ where, kind: 'postgres', text: target.rawSql });
      } else {
        throw new Error(`${where}: a target with neither a Prometheus expr nor a PostgreSQL rawSql (datasource ${type ?? 'unset'})`);
      }
    }
  }
  for (const variable of dashboard.templating?.list ?? []) {
    const text = variableQuery(variable);
    if (variable.type !== 'query' || text === undefined) continue;
    const where = `${file} › variable $${variable.name}`;
    const type = variable.datasource?.type;
    if (type === PROMETHEUS_TYPE) {
      queries.push({ where, kind: 'prometheus', text: variableToPromql(text) });
    } else if (type !== undefined && POSTGRES_TYPES.has(type)) {
      queries.push({ where, kind: 'postgres', text });
    }
  }
  return queries;
};

/**
 * Grafana's Prometheus variable functions as PromQL: `label_values(m{…}, label)` →
 * `count by (label) (m{…})`, `query_result(q)` → `q`, `metrics(re)` → a `__name__` match.
 *
 * @throws Error for a variable function it does not know.
 */
export const variableToPromql = (query: string): string => {
  const trimmed = query.trim();
  const labelValues = /^label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/s.exec(trimmed);
  if (labelValues !== null) {
    return `count by (${labelValues[2]}) (${labelValues[1]})`;
  }
  const queryResult = /^query_result\((.*)\)$/s.exec(trimmed);
  if (queryResult !== null) {
    return queryResult[1] ?? '';
  }
  const metrics = /^metrics\((.*)\)$/s.exec(trimmed);
  if (metrics !== null) {
    return `count by (__name__) ({__name__=~"${metrics[1] ?? ''}"})`;
  }
  throw new Error(`unsupported Grafana variable query: ${query}`);
};

/** Grafana's built-in interval variables, replaced by concrete durations for evaluation. */
const BUILTIN_DURATIONS: Readonly<Record<string, string>> = {
  __rate_interval: '1m',
  __interval: '1m',
  __range: '1h',
  __range_s: '3600',
  __range_ms: '3600000',
  __interval_ms: '60000',
};

const VARIABLE = /\$\{(\w+)(?::([\w]+))?\}|\[\[(\w+)(?::([\w]+))?\]\]|\$(\w+)/g;

/**
 * Replaces Grafana variables in a PromQL expression: interval built-ins by durations,
 * dashboard variables by `.*` (their "All" value). A dashboard variable may hold several
 * values, so it must sit inside a regex matcher (`=~"$var"`); elsewhere it is reported.
 */
export const substitutePromqlVariables = (expr: string, variableNames: ReadonlySet<string>): { text: string; problems: string[] } => {
  const problems: string[] = [];
  const text = expr.replace(VARIABLE, (match, n1?: string, _f1?: string, n2?: string, _f2?: string, n3?: string, offset?: number) => {
    const name = n1 ?? n2 ?? n3 ?? '';
    const builtin = BUILTIN_DURATIONS[name];
    if (builtin !== undefined) {
      return builtin;
    }
    if (variableNames.has(name)) {
      const before = expr.slice(0, offset ?? 0);
      if (!/[=!]~\s*"[^"]*$/.test(before)) {
        problems.push(`variable ${match} is used outside a regex matcher (=~"${match}"), so "All" or several values break the query`);
      }
      return '.*';
    }
    problems.push(`unknown variable ${match}`);
    return match;
  });
  return { text, problems };
};

const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
  'start',
  'end',
]);

/** The metric names a PromQL expression selects (bare identifiers that are not functions or keywords). */
export const promqlMetricNames = (expr: string): string[] => {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    const name = match[1] ?? '';
    if (!PROMQL_KEYWORDS.has(name.toLowerCase())) {
      names.add(name);
    }
  }
  return [...names];
};

/** Time window the SQL macros stand for in the test: the last day, plus an hour of clock skew. */
const TIME_FROM = "(now() - interval '1 day')";
const TIME_TO = "(now() + interval '1 hour')";

/**
 * Expands Grafana's SQL macros the way the PostgreSQL datasource does, over a fixed
 * window (the last day).
 *
 * @throws Error for a macro it does not know, so a new macro cannot slip through unrun.
 */
export const expandSqlMacros = (text: string): string =>
  text
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_m, column: string) => `${column.trim()} BETWEEN ${TIME_FROM} AND ${TIME_TO}`)
    .replace(/\$__timeFrom\(\)/g, TIME_FROM)
    .replace(/\$__timeTo\(\)/g, TIME_TO)
    .replace(/\$__timeGroupAlias\(([^,)]+)(?:,[^)]*)?\)/g, (_m, column: string) => `date_trunc('hour', ${column.trim()}) AS "time"`)
    .replace(/\$__timeGroup\(([^,)]+)(?:,[^)]*)?\)/g, (_m, column: string) => `date_trunc('hour', ${column.trim()})`)
    .replace(/\$__time\(([^)]+)\)/g, (_m, column: string) => `${column.trim()} AS "time"`)
    .replace(
      /\$__unixEpochFilter\(([^)]+)\)/g,
      (_m, column: string) => `${column.trim()} BETWEEN extract(epoch FROM ${TIME_FROM}) AND extract(epoch FROM ${TIME_TO})`,
    )
    .replace(/\$__(\w+)/g, (macro) => {
      throw new Error(`unsupported Grafana SQL macro ${macro} (teach expandSqlMacros in test/deploy/helpers/grafana-queries.ts)`);
    });

const sqlQuote = (value: string): string => `'${value.replace(/'/g, "''")}'`;
const regexEscape = (value: string): string => value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * Replaces dashboard variables in SQL with a selection, formatted as Grafana does for
 * SQL datasources: "all" → the variable's custom all value (raw) or every value; values
 * → quoted and comma-separated by default, `${v:regex}` → an alternation, `${v:raw}`,
 * `${v:csv}`, `${v:sqlstring}`.
 *
 * @throws Error for an unknown variable or format.
 */
export const substituteSqlVariables = (
  text: string,
  variables: ReadonlyMap<string, { readonly allValue?: string | null | undefined; readonly values: readonly string[] }>,
  selection: 'all' | 'first',
): string =>
  text.replace(VARIABLE, (match, n1?: string, f1?: string, n2?: string, f2?: string, n3?: string) => {
    const name = n1 ?? n2 ?? n3 ?? '';
    const format = f1 ?? f2 ?? 'sqlstring';
    const variable = variables.get(name);
    if (variable === undefined) {
      throw new Error(`unknown variable ${match} in SQL`);
    }
    const all = selection === 'all';
    if (all && variable.allValue !== undefined && variable.allValue !== null && variable.allValue !== '') {
      return variable.allValue;
    }
    const values = all ? variable.values : variable.values.slice(0, 1);
    switch (format) {
      case 'sqlstring':
        return values.map(sqlQuote).join(',');
      case 'regex':
        return values.length === 1 ? regexEscape(values[0] ?? '') : `(${values.map(regexEscape).join('|')})`;
      case 'raw':
      case 'csv':
        return values.join(',');
      default:
        throw new Error(`unsupported variable format ${match} in SQL`);
    }
  });
