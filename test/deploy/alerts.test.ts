import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createUser } from '../helpers/fixtures.js';
import { createHarness, type Harness } from '../helpers/run-harness.js';
import { promqlMetricNames } from './helpers/grafana-queries.js';
import { binaryOnPath, requireOrSkip } from '../helpers/requires.js';
import { requireBinary } from './helpers/prometheus-server.js';
import { parseYamlFile, readRepoFile, REPO_ROOT, type ComposeFile } from './helpers/repo-files.js';
import { runMix } from './helpers/run-mix.js';
import { conventionsEnv, GEN_AI_CONVENTIONS, isGenAiMetricOf, otherConventions } from './helpers/gen-ai-conventions.js';

type Rule = {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
};

const RULES_FILE = join(REPO_ROOT, 'prometheus/alerts.yml');
const rules = parseYamlFile<{ groups: { name: string; rules: Rule[] }[] }>('prometheus/alerts.yml').groups.flatMap((group) => group.rules);
const alerts = rules.filter((rule): rule is Rule & { alert: string } => rule.alert !== undefined);
const alertNamed = (name: string): Rule => {
  const rule = alerts.find((candidate) => candidate.alert === name);
  if (rule === undefined) throw new Error(`prometheus/alerts.yml has no alert ${name}`);
  return rule;
};

/** `promtool <args>`; its output explains a failure. */
const promtool = (...args: string[]): { ok: boolean; output: string } => {
  requireBinary('promtool');
  const result = spawnSync('promtool', args, { encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
};

const JOB = { job: 'chatter' };
const A = { ...JOB, instance: 'app-1:8000' };
const OPENAI = { gen_ai_provider_name: 'openai', gen_ai_request_model: 'gpt-4o-mini' };
const selector = (name: string, labels: Readonly<Record<string, string>>): string =>
  `${name}{${Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(',')}}`;

type Series = { readonly series: string; readonly values: string };

/** One `promtool test rules` case: these series, evaluated at `at`, fire `alert` with `labels` (or not at all). */
type Case = {
  readonly name: string;
  readonly alert: string;
  readonly series: readonly Series[];
  readonly at: string;
  /** The firing alert's labels besides alertname and severity, and its rendered summary; undefined: it does not fire. */
  readonly fires?: { readonly labels: Readonly<Record<string, string>>; readonly summary: string };
};

const calls = (labels: Record<string, string>) =>
  selector('chatter_llm_calls_total', { ...A, ...OPENAI, chatter_outcome: 'ok', ...labels });
const runs = (status: string) =>
  selector('chatter_workflow_runs_total', { ...A, chatter_workflow_name: 'chat', chatter_run_status: status });
/** Call duration buckets under the released name, or the latest conventions' (OTEL_SEMCONV_STABILITY_OPT_IN). */
const DURATION_BUCKETS = {
  released: 'gen_ai_client_operation_duration_bucket',
  latest: 'gen_ai_client_inference_duration_bucket',
} as const;
const duration = (le: string, name: string = DURATION_BUCKETS.released) =>
  selector(name, { ...A, ...OPENAI, gen_ai_operation_name: 'chat', le });
const backlog = (state: string) => selector('chatter_telemetry_writer_backlog', { ...A, chatter_writer_state: state });

/** The same series under the latest conventions' duration name: the latency alert reads either. */
const underLatestNames = (testCase: Case): Case => ({
  ...testCase,
  name: `${testCase.name}, under the latest conventions’ name`,
  series: testCase.series.map((entry) => ({ ...entry, series: entry.series.replace(DURATION_BUCKETS.released, DURATION_BUCKETS.latest) })),
});

const RELEASED_CASES: readonly Case[] = [
  {
    name: 'spend of 60 USD/hour (1 USD a minute) for 40 minutes',
    alert: 'ChatterSpendRateHigh',
    series: [{ series: selector('chatter_llm_cost_total', { ...A, ...OPENAI }), values: '0+1x60' }],
    at: '40m',
    fires: { labels: {}, summary: 'Model spend is 60.00 USD/hour' },
  },
  {
    name: 'spend of 30 USD/hour',
    alert: 'ChatterSpendRateHigh',
    series: [{ series: selector('chatter_llm_cost_total', { ...A, ...OPENAI }), values: '0+0.5x60' }],
    at: '40m',
  },
  {
    name: 'a user at 85% of their cost budget',
    alert: 'ChatterUserBudgetNearlyUsed',
    series: [
      { series: selector('chatter_budget_max_used', { ...A, chatter_budget_kind: 'cost' }), values: '0.85x20' },
      { series: selector('chatter_budget_max_used', { ...A, chatter_budget_kind: 'tokens' }), values: '0.1x20' },
    ],
    at: '10m',
    fires: { labels: { chatter_budget_kind: 'cost' }, summary: 'A user has used 85% of their cost budget' },
  },
  {
    name: 'every user below 80% of their budgets',
    alert: 'ChatterUserBudgetNearlyUsed',
    series: [{ series: selector('chatter_budget_max_used', { ...A, chatter_budget_kind: 'cost' }), values: '0.79x20' }],
    at: '10m',
  },
  {
    name: '2 of every 12 runs fail',
    alert: 'ChatterRunErrorRateHigh',
    series: [
      { series: runs('completed'), values: '0+10x40' },
      { series: runs('failed'), values: '0+2x40' },
    ],
    at: '30m',
    fires: { labels: {}, summary: '16.67% of runs fail or time out' },
  },
  {
    name: 'runs complete (a flat failed counter from earlier)',
    alert: 'ChatterRunErrorRateHigh',
    series: [
      { series: runs('completed'), values: '0+10x40' },
      { series: runs('failed'), values: '3x40' },
    ],
    at: '30m',
  },
  {
    name: 'model calls taking 20–41 s',
    alert: 'ChatterModelLatencyHigh',
    series: [
      { series: duration('1.28'), values: '0x40' },
      { series: duration('20.48'), values: '0x40' },
      { series: duration('40.96'), values: '0+10x40' },
      { series: duration('+Inf'), values: '0+10x40' },
    ],
    at: '30m',
    fires: { labels: OPENAI, summary: 'p95 of openai/gpt-4o-mini calls is 39.94s' },
  },
  {
    name: 'model calls under 1.3 s',
    alert: 'ChatterModelLatencyHigh',
    series: [
      { series: duration('1.28'), values: '0+10x40' },
      { series: duration('20.48'), values: '0+10x40' },
      { series: duration('40.96'), values: '0+10x40' },
      { series: duration('+Inf'), values: '0+10x40' },
    ],
    at: '30m',
  },
  {
    name: 'calls without usage keep coming',
    alert: 'ChatterUsageMissing',
    series: [{ series: calls({ chatter_usage_source: 'missing' }), values: '0+1x30' }],
    at: '10m',
    fires: { labels: OPENAI, summary: 'openai/gpt-4o-mini returned no token usage' },
  },
  {
    name: 'the first call without usage (a new series, already at 1)',
    alert: 'ChatterUsageMissing',
    series: [{ series: calls({ chatter_usage_source: 'missing' }), values: '_x10 1x20' }],
    at: '12m',
    fires: { labels: OPENAI, summary: 'openai/gpt-4o-mini returned no token usage' },
  },
  {
    name: 'calls with usage, and an old flat usage_missing count',
    alert: 'ChatterUsageMissing',
    series: [
      { series: calls({ chatter_usage_source: 'missing' }), values: '1x60' },
      { series: calls({ chatter_usage_source: 'provider' }), values: '0+5x60' },
      {
        series: selector('chatter_llm_calls_total', { ...A, ...OPENAI, chatter_outcome: 'error', chatter_usage_source: 'missing' }),
        values: '0+1x60',
      },
    ],
    at: '40m',
  },
  {
    name: 'calls with usage to a model that was never costed',
    alert: 'ChatterPriceUnknown',
    series: [
      { series: calls({ chatter_usage_source: 'provider', gen_ai_request_model: 'unpriced-model-x' }), values: '0+1x20' },
      { series: calls({ chatter_usage_source: 'provider' }), values: '0+1x20' },
      { series: selector('chatter_llm_cost_total', { ...A, ...OPENAI }), values: '0+0.01x20' },
    ],
    at: '10m',
    fires: { labels: { ...OPENAI, gen_ai_request_model: 'unpriced-model-x' }, summary: 'No price for openai/unpriced-model-x' },
  },
  {
    name: 'every model called is costed (one at 0 USD)',
    alert: 'ChatterPriceUnknown',
    series: [
      { series: calls({ chatter_usage_source: 'provider' }), values: '0+1x20' },
      { series: selector('chatter_llm_cost_total', { ...A, ...OPENAI }), values: '0x20' },
      { series: calls({ chatter_usage_source: 'missing', gen_ai_request_model: 'no-usage-model' }), values: '0+1x20' },
    ],
    at: '10m',
  },
  {
    name: 'records spooled for 8 minutes',
    alert: 'ChatterWriterSpooling',
    series: [
      { series: backlog('spooled'), values: '5x10' },
      { series: backlog('queued'), values: '0x10' },
    ],
    at: '8m',
    fires: { labels: { instance: A.instance }, summary: 'app-1:8000 has 5 run records spooled on disk' },
  },
  {
    name: 'an empty spool',
    alert: 'ChatterWriterSpooling',
    series: [{ series: backlog('spooled'), values: '0x10' }],
    at: '8m',
  },
  {
    name: '2000 records queued for 8 minutes',
    alert: 'ChatterWriterBacklogHigh',
    series: [{ series: backlog('queued'), values: '2000x10' }],
    at: '8m',
    fires: { labels: { instance: A.instance }, summary: 'app-1:8000 has 2000 run records waiting to be written' },
  },
  {
    name: 'a short queue',
    alert: 'ChatterWriterBacklogHigh',
    series: [{ series: backlog('queued'), values: '10x10' }],
    at: '8m',
  },
  {
    name: 'three records dead-lettered',
    alert: 'ChatterWriterDeadLetters',
    series: [{ series: selector('chatter_telemetry_writer_dead_lettered_total', A), values: '0x10 3x10' }],
    at: '15m',
    fires: { labels: { instance: A.instance }, summary: 'app-1:8000 dead-lettered run records' },
  },
  {
    name: 'no dead letters',
    alert: 'ChatterWriterDeadLetters',
    series: [{ series: selector('chatter_telemetry_writer_dead_lettered_total', A), values: '0x30' }],
    at: '20m',
  },
  {
    name: 'an instance not scraped for 5 minutes',
    alert: 'ChatterInstanceDown',
    series: [
      { series: selector('up', A), values: '0x10' },
      { series: selector('up', { ...JOB, instance: 'app-2:8000' }), values: '1x10' },
    ],
    at: '5m',
    fires: { labels: A, summary: 'app-1:8000 is down' },
  },
  {
    name: 'instances up',
    alert: 'ChatterInstanceDown',
    series: [{ series: selector('up', A), values: '1x10' }],
    at: '5m',
  },
];

const CASES: readonly Case[] = [
  ...RELEASED_CASES,
  ...RELEASED_CASES.filter((testCase) => testCase.alert === 'ChatterModelLatencyHigh').map(underLatestNames),
];

/** The description as Prometheus renders it: `{{ $labels.x }}` filled in (descriptions use nothing else). */
const renderDescription = (rule: Rule, labels: Readonly<Record<string, string>>): string =>
  (rule.annotations?.['description'] ?? '').replace(/\{\{\s*\$labels\.(\w+)\s*\}\}/g, (_, name: string) => labels[name] ?? '');

/** The `promtool test rules` file: one test per case, so no series leaks into another case. */
const unitTests = () => ({
  rule_files: [RULES_FILE],
  evaluation_interval: '1m',
  tests: CASES.map((testCase) => {
    const rule = alertNamed(testCase.alert);
    return {
      name: `${testCase.alert}: ${testCase.name}`,
      interval: '1m',
      input_series: testCase.series,
      alert_rule_test: [
        {
          eval_time: testCase.at,
          alertname: testCase.alert,
          exp_alerts:
            testCase.fires === undefined
              ? []
              : [
                  {
                    exp_labels: { severity: rule.labels?.['severity'], ...testCase.fires.labels },
                    exp_annotations: { summary: testCase.fires.summary, description: renderDescription(rule, testCase.fires.labels) },
                  },
                ],
        },
      ],
    };
  }),
});

// promtool checks and evaluates the rules: skipped (with the reason) where it is missing, required in CI.
const describeWithPromtool = requireOrSkip(
  'promtool',
  binaryOnPath('promtool', "Debian's prometheus package: `bash .ci/prometheus.sh` or `apt-get install -y prometheus`"),
);

describeWithPromtool('the alerting rules (prometheus/alerts.yml)', () => {
  it('pass promtool check rules', () => {
    const { ok, output } = promtool('check', 'rules', RULES_FILE);
    expect(ok, output).toBe(true);
  });

  it('are loaded by the compose Prometheus', () => {
    const config = parseYamlFile<{ rule_files?: string[] }>('prometheus/prometheus.yml');
    expect(config.rule_files).toContain('alerts.yml');
    const compose = parseYamlFile<ComposeFile>('docker-compose.yml');
    expect(compose.services['prometheus']?.volumes).toContain('./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro');
    // promtool resolves rule_files as Prometheus does, next to the config file.
    const { ok, output } = promtool('check', 'config', join(REPO_ROOT, 'prometheus/prometheus.yml'));
    expect(ok, output).toBe(true);
    expect(output).toContain('alerts.yml');
  });

  it('cover spend, budgets, errors, latency, usage_missing, price_unknown, the writer and instances', () => {
    expect(alerts.map((rule) => rule.alert).sort()).toEqual(
      [
        'ChatterInstanceDown',
        'ChatterModelLatencyHigh',
        'ChatterPriceUnknown',
        'ChatterRunErrorRateHigh',
        'ChatterSpendRateHigh',
        'ChatterUsageMissing',
        'ChatterUserBudgetNearlyUsed',
        'ChatterWriterBacklogHigh',
        'ChatterWriterDeadLetters',
        'ChatterWriterSpooling',
      ].sort(),
    );
  });

  it('give every alert a for, a severity, a summary, a description and a runbook in the README', () => {
    const readme = readRepoFile('README.md');
    const section = readme.slice(readme.indexOf('### Alerts'));
    expect(readme).toContain('### Alerts');
    for (const rule of alerts) {
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(['info', 'warning', 'critical'], rule.alert).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], rule.alert).toBeTruthy();
      expect(rule.annotations?.['description'], rule.alert).toBeTruthy();
      expect(section, `README "Alerts" has no runbook for ${rule.alert}`).toContain(`**${rule.alert}**`);
    }
  });

  it('fire on the series that should fire them and stay silent on the others (promtool test rules)', async () => {
    // Each alert has a firing and a silent case.
    for (const rule of alerts) {
      const cases = CASES.filter((testCase) => testCase.alert === rule.alert);
      expect(
        cases.some((testCase) => testCase.fires !== undefined),
        rule.alert,
      ).toBe(true);
      expect(
        cases.some((testCase) => testCase.fires === undefined),
        rule.alert,
      ).toBe(true);
    }
    const dir = await mkdtemp(join(tmpdir(), 'chatter-alerts-'));
    try {
      const file = join(dir, 'alerts.test.yml');
      await writeFile(file, JSON.stringify(unitTests(), null, 2));
      const { ok, output } = promtool('test', 'rules', file);
      expect(ok, output).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe.each(GEN_AI_CONVENTIONS)(
    'against the metrics the service exports after a set of runs, with the %s GenAI names',
    (conventions) => {
      let db: TestDatabase;
      let h: Harness;
      let exported: Set<string>;
      let samples: string[];
      beforeAll(async () => {
        db = await createTestDatabase();
        // A user with budgets, so that the budget gauge has something to report from the start.
        const userId = await createUser(db.pool);
        await db.pool.query(
          sql.unsafe`UPDATE users SET cost_budget_usd = 10, total_cost = 8.5, token_budget = 1000, total_tokens = 250 WHERE id = ${userId}`,
        );
        h = await createHarness(conventionsEnv(conventions), { database: db });
        await runMix(h);
        // GET /metrics as the API serves it (its handler on a loopback server).
        const server = createServer((request, reply) => h.services.metrics.metricsHandler(request, reply));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`).then((answer) => answer.text());
        await new Promise((resolve) => server.close(resolve));
        samples = response.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
        exported = new Set(samples.map((line) => line.split(/[{ ]/)[0] ?? ''));
      }, 120_000);
      afterAll(async () => {
        await h?.close();
        await db?.drop();
      });

      it('name only metrics the service exports (or their own recording rules, or up, or the other GenAI names)', () => {
        const recorded = new Set(rules.flatMap((rule) => (rule.record === undefined ? [] : [rule.record])));
        const other = otherConventions(conventions);
        const problems = rules.flatMap((rule) =>
          promqlMetricNames(rule.expr)
            .filter((name) => !recorded.has(name) && name !== 'up' && !exported.has(name) && !isGenAiMetricOf(other, name))
            .map((name) => `${rule.alert ?? rule.record}: ${name} is not exported by the service`),
        );
        expect(problems).toEqual([]);
        // The new service-state gauges are among them, with the labels the alerts select on.
        expect(exported).toContain('chatter_telemetry_writer_backlog');
        expect(exported).toContain('chatter_telemetry_writer_dead_lettered_total');
        expect(exported).toContain('chatter_budget_max_used');
        // The latency alert reads this convention's duration histogram.
        expect(exported).toContain(DURATION_BUCKETS[conventions]);
      });

      it('reports the largest share of a budget any user has spent, and the writer backlog', () => {
        const value = (prefix: string) =>
          Number(
            samples
              .find((line) => line.startsWith(prefix))
              ?.split(' ')
              .pop(),
          );
        // Only the budgeted user counts (the mix's users have no budget): 8.5 of 10 USD, 250 of 1000 tokens.
        expect(value('chatter_budget_max_used{chatter_budget_kind="cost"')).toBeCloseTo(0.85, 10);
        expect(value('chatter_budget_max_used{chatter_budget_kind="tokens"')).toBeCloseTo(0.25, 10);
        // Everything was committed: nothing queued or spooled.
        expect(value('chatter_telemetry_writer_backlog{chatter_writer_state="queued"')).toBe(0);
        expect(value('chatter_telemetry_writer_backlog{chatter_writer_state="spooled"')).toBe(0);
      });
    },
  );
});
