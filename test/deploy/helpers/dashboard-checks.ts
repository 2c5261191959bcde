import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import { ulid } from 'ulid';
import { splitStatements } from '../../../src/db/split-statements.js';
import {
  dashboardQueries,
  expandSqlMacros,
  POSTGRES_TYPES,
  PROMETHEUS_TYPE,
  promqlMetricNames,
  substitutePromqlVariables,
  substituteSqlVariables,
  variableToPromql,
  type Dashboard,
  type Query,
} from './grafana-queries.js';
import type { PromResponse } from './prometheus-server.js';

export type PromqlChecker = {
  readonly query: (expr: string) => Promise<PromResponse>;
  /** Metric names Prometheus has scraped from the service. */
  readonly exported: ReadonlySet<string>;
  /**
   * Names a query may name without the service exporting them: the other GenAI
   * conventions' metrics, which queries name beside these (`a or b`) to work with both.
   */
  readonly mayBeAbsent?: (name: string) => boolean;
};

/**
 * Evaluates PromQL queries against a real Prometheus. A problem is reported for each
 * query that does not parse, returns no series, or names a metric the service does not
 * export (even where `or vector(0)` would hide it; the other GenAI conventions' names
 * excepted), and for misused variables.
 */
export const checkPromqlQueries = async (
  queries: readonly Query[],
  variableNames: ReadonlySet<string>,
  checker: PromqlChecker,
): Promise<string[]> => {
  const problems: string[] = [];
  for (const query of queries) {
    if (query.kind !== 'prometheus') continue;
    const { text, problems: variableProblems } = substitutePromqlVariables(query.text, variableNames);
    problems.push(...variableProblems.map((problem) => `${query.where}: ${problem}`));
    for (const name of promqlMetricNames(text)) {
      if (!checker.exported.has(name) && checker.mayBeAbsent?.(name) !== true) {
        problems.push(`${query.where}: names metric ${name}, which the service does not export`);
      }
    }
    const response = await checker.query(text);
    if (response.status === 'error') {
      problems.push(`${query.where}: Prometheus rejects the query (${response.errorType}: ${response.error}): ${text}`);
    } else if (Array.isArray(response.data.result) && response.data.result.length === 0) {
      problems.push(`${query.where}: returns no series: ${text}`);
    }
  }
  return problems;
};

/** Every PromQL problem of one dashboard (panel targets and query variables). */
export const checkDashboardPromql = async (file: string, dashboard: Dashboard, checker: PromqlChecker): Promise<string[]> =>
  checkPromqlQueries(
    dashboardQueries(file, dashboard),
    new Set((dashboard.templating?.list ?? []).map((variable) => variable.name)),
    checker,
  );

/** A frozen one-part template array: what slonik's tag accepts for text read from a file. */
const raw = (text: string) => sql.unsafe(Object.freeze(Object.assign([text], { raw: Object.freeze([text]) })) as TemplateStringsArray);

class Rollback extends Error {}

export type SqlResult = { readonly where: string; readonly selection: 'all' | 'first'; readonly rows: number };

export type SqlCheckOptions = {
  readonly pool: DatabasePool;
  /** The grants Grafana's role gets (grafana/postgres/reader-grants.sql), naming `grafana_reader`. */
  readonly readerGrants: string;
  /** Values of a Prometheus variable used in SQL (its label values). */
  readonly prometheusValues: (query: string) => Promise<string[]>;
};

/**
 * Runs every SQL query of the dashboards (macros expanded; variables set to "All" and
 * to their first value) as a role holding exactly Grafana's reader grants, inside one
 * transaction that is rolled back, so the role and everything else leave no trace.
 * Each query runs under a savepoint: one failure does not hide the others.
 */
export const checkDashboardSql = async (
  dashboards: readonly { file: string; dashboard: Dashboard }[],
  options: SqlCheckOptions,
): Promise<{ problems: string[]; results: SqlResult[] }> => {
  const problems: string[] = [];
  const results: SqlResult[] = [];
  const role = `grafana_reader_test_${ulid().toLowerCase()}`;
  const run = async (t: DatabaseTransactionConnection, text: string) => t.transaction(async (s) => s.any(raw(text)));
  try {
    await options.pool.transaction(async (t) => {
      try {
        await t.query(raw(`CREATE ROLE ${role} NOLOGIN`));
      } catch (error) {
        throw new Error(
          `the dashboard SQL runs as a role with Grafana's grants; creating one needs a database user with CREATEROLE (or superuser): ${String(error)}`,
          { cause: error },
        );
      }
      for (const statement of splitStatements(options.readerGrants.replace(/\bgrafana_reader\b/g, role))) {
        await t.query(raw(statement));
      }
      await t.query(raw(`SET LOCAL ROLE ${role}`));

      for (const { file, dashboard } of dashboards) {
        const variables = new Map<string, { allValue?: string | null; values: string[] }>();
        const variableNames = new Set((dashboard.templating?.list ?? []).map((variable) => variable.name));
        for (const variable of dashboard.templating?.list ?? []) {
          const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
          let values: string[] = [];
          if (variable.type === 'query' && query !== undefined && variable.datasource?.type === PROMETHEUS_TYPE) {
            values = await options.prometheusValues(substitutePromqlVariables(variableToPromql(query), variableNames).text);
          } else if (variable.type === 'query' && query !== undefined && POSTGRES_TYPES.has(variable.datasource?.type ?? '')) {
            try {
              const rows = await run(t, expandSqlMacros(query));
              values = rows.map((row) => String(Object.values(row as Record<string, unknown>)[0]));
            } catch (error) {
              problems.push(`${file} › variable $${variable.name}: ${error instanceof Error ? error.message : String(error)}`);
            }
          }
          variables.set(variable.name, { allValue: variable.allValue, values });
        }
        for (const query of dashboardQueries(file, dashboard)) {
          if (query.kind !== 'postgres' || query.where.includes('› variable $')) continue;
          for (const selection of ['all', 'first'] as const) {
            try {
              const text = substituteSqlVariables(expandSqlMacros(query.text), variables, selection);
              const rows = await run(t, text);
              results.push({ where: query.where, selection, rows: rows.length });
            } catch (error) {
              problems.push(`${query.where} (variables: ${selection}): ${error instanceof Error ? error.message : String(error)}`);
            }
          }
        }
      }
      throw new Rollback();
    });
  } catch (error) {
    if (!(error instanceof Rollback)) {
      throw error;
    }
  }
  return { problems, results };
};
