import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { createLogger } from '../../src/logger.js';
import { createHarness, type Harness } from '../helpers/run-harness.js';
import { checkDashboardPromql, checkDashboardSql, checkPromqlQueries, type PromqlChecker } from './helpers/dashboard-checks.js';
import { dashboardQueries, loadDashboards, type Dashboard } from './helpers/grafana-queries.js';
import { promtoolCheckConfig, startPrometheus, waitFor, type PrometheusServer, type PromResponse } from './helpers/prometheus-server.js';
import { binaryOnPath, requireOrSkip } from '../helpers/requires.js';
import { parseYamlFile, readRepoFile, REPO_ROOT } from './helpers/repo-files.js';
import { runMix, RUNS_PER_MIX } from './helpers/run-mix.js';
import { conventionsEnv, GEN_AI_CONVENTIONS, isGenAiMetricOf, otherConventions } from './helpers/gen-ai-conventions.js';

const JOB = 'chatter';
const dashboards = loadDashboards(join(REPO_ROOT, 'grafana/dashboards'));

type ScrapeConfig = Record<string, unknown> & { job_name: string };

/**
 * The repository's `chatter` scrape job (relabelling and all), with its service
 * discovery replaced by the loopback target and a 1 s interval.
 */
const testScrapeConfig = (target: string) => {
  const repo = parseYamlFile<{ scrape_configs: ScrapeConfig[] }>('prometheus/prometheus.yml');
  const job = repo.scrape_configs.find((config) => config.job_name === JOB);
  if (job === undefined) {
    throw new Error(`prometheus/prometheus.yml has no "${JOB}" scrape job`);
  }
  const kept = Object.fromEntries(Object.entries(job).filter(([key]) => !key.endsWith('_sd_configs') && key !== 'static_configs'));
  return {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    scrape_configs: [{ ...kept, scrape_interval: '1s', scrape_timeout: '1s', static_configs: [{ targets: [target] }] }],
  };
};

const firstValue = (response: PromResponse): number | undefined => {
  if (response.status !== 'success' || !Array.isArray(response.data.result)) return undefined;
  const [series] = response.data.result as readonly { value?: readonly [number, string] }[];
  return series?.value === undefined ? undefined : Number(series.value[1]);
};

/** A copy of `dashboard` whose panel `title` names metric `to` instead of `from`. */
const renameMetric = (dashboard: Dashboard, title: string, from: string, to: string): Dashboard => ({
  ...dashboard,
  panels: dashboard.panels.map((panel) =>
    panel.title !== title
      ? panel
      : { ...panel, targets: (panel.targets ?? []).map((target) => ({ ...target, expr: target.expr?.replace(from, to) })) },
  ),
});

const PROMETHEUS_INSTALL = "Debian's prometheus package: `bash .ci/prometheus.sh` or `apt-get install -y prometheus`";
/** Real Prometheus and promtool binaries: skipped without them locally, required in CI (.ci/run installs them). */
const describeWithPromtool = requireOrSkip('promtool', binaryOnPath('promtool', PROMETHEUS_INSTALL));
const describeWithPrometheus = requireOrSkip('prometheus', binaryOnPath('prometheus', PROMETHEUS_INSTALL));

describeWithPromtool('the Prometheus config', () => {
  it('passes promtool check config', () => {
    const { ok, output } = promtoolCheckConfig(join(REPO_ROOT, 'prometheus/prometheus.yml'));
    expect(ok, output).toBe(true);
  });
});

// Once per GenAI name set (OTEL_SEMCONV_STABILITY_OPT_IN): every query must work with either.
describeWithPrometheus('the dashboards, against a real Prometheus scraping the service after a set of runs', () => {
  describe.each(GEN_AI_CONVENTIONS)('with the %s GenAI names', (conventions) => {
    let h: Harness | undefined;
    let app: FastifyInstance | undefined;
    let prometheus: PrometheusServer | undefined;
    let checker: PromqlChecker;

    let setupError: unknown;
    /** The checker, or the setup's error: every test fails (none is skipped) when the setup fails. */
    const ready = (): PromqlChecker => {
      if (setupError !== undefined) throw setupError;
      return checker;
    };

    const setUp = async () => {
      // CI installs Prometheus (.ci/prometheus.sh); a setup failure fails every test below.
      h = await createHarness({ TOOL_CALL_LIMIT: '3', MODEL_MAX_RETRIES: '1', ...conventionsEnv(conventions) });
      const harness = h;
      await runMix(harness);
      // The real app on loopback: Prometheus scrapes GET /metrics as it does in the stack.
      app = await buildApp({ config: harness.config, db: harness.db, logger: createLogger(harness.config), services: harness.services });
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      const prom = await startPrometheus(testScrapeConfig(`127.0.0.1:${port}`));
      prometheus = prom;
      const runsSeen = async () => firstValue(await prom.query(`sum(chatter_workflow_runs_total{job="${JOB}"})`));
      await waitFor(`Prometheus to scrape ${RUNS_PER_MIX} runs`, async () => (await runsSeen()) === RUNS_PER_MIX, prom.log);
      // A second set after the first scrape, so that rate() and increase() see counters move.
      await runMix(harness);
      await waitFor(`Prometheus to scrape ${2 * RUNS_PER_MIX} runs`, async () => (await runsSeen()) === 2 * RUNS_PER_MIX, prom.log);
      checker = {
        query: prom.query,
        exported: new Set(await prom.metricNames(`{job="${JOB}"}`)),
        mayBeAbsent: (name) => isGenAiMetricOf(otherConventions(conventions), name),
      };
    };

    beforeAll(async () => {
      try {
        await setUp();
      } catch (error) {
        setupError = error;
      }
    }, 180_000);

    afterAll(async () => {
      await prometheus?.stop();
      await app?.close();
      await h?.close();
    });

    it('exports the GenAI metrics of these conventions and none of the others', () => {
      const exported = [...ready().exported];
      expect(exported.filter((name) => isGenAiMetricOf(otherConventions(conventions), name))).toEqual([]);
      expect(exported.filter((name) => isGenAiMetricOf(conventions, name)).length).toBeGreaterThanOrEqual(conventions === 'latest' ? 9 : 3);
    });

    it('holds the four dashboards, each with queries', () => {
      ready();
      expect(dashboards.map(({ dashboard }) => dashboard.title).sort()).toEqual([
        'LLM cost and tokens',
        'Latency',
        'Usage by user',
        'Workflow runs',
      ]);
      for (const { file, dashboard } of dashboards) {
        expect(dashboardQueries(file, dashboard).length, file).toBeGreaterThan(0);
      }
    });

    it.each(dashboards.map(({ file, dashboard }) => [file, dashboard] as const))(
      '%s: every PromQL expression parses, returns series and names only exported metrics',
      async (file, dashboard) => {
        expect(await checkDashboardPromql(file, dashboard, ready())).toEqual([]);
      },
      60_000,
    );

    it("evaluates the Jaeger datasource's trace-to-metrics queries", async () => {
      const promChecker = ready();
      const provisioning = parseYamlFile<{
        datasources: { uid: string; jsonData?: { tracesToMetrics?: { queries?: { name: string; query: string }[] } } }[];
      }>('grafana/provisioning/datasources/datasources.yaml');
      const queries = provisioning.datasources.flatMap((datasource) =>
        (datasource.jsonData?.tracesToMetrics?.queries ?? []).map((query) => ({
          where: `datasource ${datasource.uid} › ${query.name}`,
          kind: 'prometheus' as const,
          // `$$` escapes `$` from Grafana's environment expansion; $__tags becomes the span's tag matchers.
          text: query.query.replace(/\$\$/g, '$').replace(/\$__tags/g, 'gen_ai_request_model=~".+"'),
        })),
      );
      expect(queries.length).toBeGreaterThan(0);
      expect(await checkPromqlQueries(queries, new Set(), promChecker)).toEqual([]);
    });

    it('reports a dashboard that names a metric the service does not export', async () => {
      const entry = dashboards.find(({ dashboard }) => dashboard.uid === 'chatter-llm-cost');
      expect(entry).toBeDefined();
      // One query where the bogus name leaves no series, one where `or vector(0)` would hide it.
      const dashboard = entry?.dashboard as Dashboard;
      const bogus = renameMetric(
        renameMetric(dashboard, 'Cost in range', 'chatter_llm_cost_total', 'chatter_llm_spend_total'),
        'Calls without provider usage',
        'chatter_llm_calls_total',
        'chatter_llm_call_count_total',
      );
      const problems = await checkDashboardPromql('bogus-llm-cost.json', bogus, ready());
      console.log(`the checker on a dashboard naming metrics the service does not export:\n  ${problems.join('\n  ')}`);
      expect(problems).toEqual([
        expect.stringMatching(
          /^bogus-llm-cost\.json › Cost in range › A: names metric chatter_llm_spend_total, which the service does not export$/,
        ),
        expect.stringMatching(/^bogus-llm-cost\.json › Cost in range › A: returns no series: sum\(increase\(chatter_llm_spend_total/),
        expect.stringMatching(
          /^bogus-llm-cost\.json › Calls without provider usage › A: names metric chatter_llm_call_count_total, which the service does not export$/,
        ),
      ]);
    });

    it("runs every dashboard SQL query on the test database as Grafana's read-only role, each returning rows", async () => {
      ready();
      const prom = prometheus;
      if (h === undefined || prom === undefined) throw new Error('setup failed');
      const { problems, results } = await checkDashboardSql(dashboards, {
        pool: h.db.pool,
        readerGrants: readRepoFile('grafana/postgres/reader-grants.sql'),
        prometheusValues: async (query) => {
          const response = await prom.query(query);
          if (response.status !== 'success' || !Array.isArray(response.data.result)) return [];
          return (response.data.result as readonly { metric: Record<string, string> }[]).map(
            (series) => Object.values(series.metric)[0] ?? '',
          );
        },
      });
      expect(problems).toEqual([]);
      expect(results.length).toBeGreaterThanOrEqual(2 * 9);
      expect(results.filter((result) => result.rows === 0).map((result) => `${result.where} (${result.selection})`)).toEqual([]);
    });

    it("reports a SQL query that reads what Grafana's role may not (password hashes)", async () => {
      ready();
      if (h === undefined) throw new Error('setup failed');
      const probe: Dashboard = {
        uid: 'probe',
        title: 'probe',
        panels: [
          {
            title: 'Password hashes',
            targets: [
              {
                refId: 'A',
                datasource: { type: 'grafana-postgresql-datasource', uid: 'postgres' },
                rawSql: 'SELECT username, password_hash FROM users',
              },
            ],
          },
        ],
      };
      const { problems } = await checkDashboardSql([{ file: 'probe.json', dashboard: probe }], {
        pool: h.db.pool,
        readerGrants: readRepoFile('grafana/postgres/reader-grants.sql'),
        prometheusValues: async () => [],
      });
      expect(problems).toHaveLength(2);
      expect(problems[0]).toMatch(/^probe\.json › Password hashes › A \(variables: all\): .*permission denied/);
    });
  });
});
