import { readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { allPanels, loadDashboards, type Datasource } from './helpers/grafana-queries.js';
import {
  bindMounts,
  composeDefaults,
  dockerfileContextSources,
  environmentOf,
  includedInContext,
  isDirectory,
  parseYamlFile,
  readRepoFile,
  REPO_ROOT,
  repoPathExists,
  repoPathOf,
  withComposeDefaults,
  type ComposeFile,
} from './helpers/repo-files.js';

const compose = parseYamlFile<ComposeFile>('docker-compose.yml');
const services = Object.entries(compose.services);
const service = (name: string) => {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
};

type ProvisionedDatasource = { name: string; uid: string; type: string; url: string; secureJsonData?: Record<string, string> };
const datasources = parseYamlFile<{ datasources: ProvisionedDatasource[] }>(
  'grafana/provisioning/datasources/datasources.yaml',
).datasources;
const dashboardProviders = parseYamlFile<{ providers: { name: string; type: string; options: { path: string } }[] }>(
  'grafana/provisioning/dashboards/dashboards.yaml',
).providers;
const dashboards = loadDashboards(join(REPO_ROOT, 'grafana/dashboards'));

/** The "Deployment" section of the README: from its heading to the next level-2 heading. */
const deploymentSection = (): string => {
  const readme = readRepoFile('README.md');
  const start = readme.search(/^## Deployment$/m);
  if (start === -1) return '';
  const next = readme.slice(start + 1).search(/^## /m);
  return next === -1 ? readme.slice(start) : readme.slice(start, start + 1 + next);
};

describe('docker-compose.yml', () => {
  it('builds the app from a Dockerfile in the repository', () => {
    const build = service('app').build;
    const context = typeof build === 'string' ? build : (build?.context ?? '.');
    const dockerfile = typeof build === 'string' ? 'Dockerfile' : (build?.dockerfile ?? 'Dockerfile');
    expect(isDirectory(context)).toBe(true);
    expect(repoPathExists(posix.join(context, dockerfile))).toBe(true);
  });

  it('mounts only files and folders that exist in the repository', () => {
    const missing = services.flatMap(([name, s]) => [
      ...bindMounts(s)
        .filter((mount) => !repoPathExists(mount.source))
        .map((mount) => `${name}: ${mount.source}`),
      ...[s.env_file ?? []]
        .flat()
        .filter((file) => !repoPathExists(file))
        .map((file) => `${name}: env_file ${file}`),
    ]);
    expect(missing).toEqual([]);
    expect(services.flatMap(([, s]) => bindMounts(s)).length).toBeGreaterThanOrEqual(4);
  });

  it('names only container paths that a bind mount provides from an existing repository file', () => {
    const problems: string[] = [];
    for (const [name, s] of services) {
      const mounts = bindMounts(s);
      const strings = [s.entrypoint ?? [], s.command ?? [], Object.values(environmentOf(s))].flat();
      for (const value of strings) {
        for (const path of value.match(/(?<![\w:/])\/[\w.-]+(?:\/[\w.-]+)+/g) ?? []) {
          const source = repoPathOf(path, mounts);
          if (source !== undefined && !repoPathExists(source)) {
            problems.push(`${name}: ${path} → ${source} does not exist`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('pins every image to a version and gives every long-running service a healthcheck', () => {
    for (const [name, s] of services) {
      if (s.build === undefined) {
        expect(s.image, name).toMatch(/^[\w./-]+:(?!latest$)[\w.-]*\d[\w.-]*$/);
      }
      if (s.restart !== 'no') {
        expect(s.healthcheck?.test, `${name} has no healthcheck`).toBeDefined();
      }
    }
  });

  it('flags in the README every default password or secret it falls back to', () => {
    const section = deploymentSection();
    expect(section).not.toBe('');
    const secrets = composeDefaults(readRepoFile('docker-compose.yml')).filter(({ name }) => /PASSWORD|SECRET|KEY|TOKEN/.test(name));
    expect(secrets.length).toBeGreaterThan(0);
    for (const { name, value } of secrets) {
      expect(section, `README "Deployment" does not mention ${name}`).toContain(name);
      expect(section, `README "Deployment" does not flag the default ${value}`).toContain(value);
    }
  });

  it("gives the app a valid configuration pointing at the compose PostgreSQL and Jaeger's OTLP receiver", () => {
    const env = Object.fromEntries(Object.entries(environmentOf(service('app'))).map(([key, value]) => [key, withComposeDefaults(value)]));
    const config = loadConfig(env);
    expect(config.host).toBe('0.0.0.0');
    expect(new URL(config.database.url ?? '').hostname).toBe('postgres');
    // Read by the OpenTelemetry SDK itself (the OTLP exporter appends /v1/traces).
    expect(env['OTEL_EXPORTER_OTLP_ENDPOINT']).toBe('http://jaeger:4318');
    expect(config.telemetry.metricsEnabled).toBe(true);
    // The same environment in production, with the secret production requires.
    expect(() => loadConfig({ ...env, CHATTER_ENV: 'production', JWT_SECRET: 'x'.repeat(48) })).not.toThrow();
  });

  it('points Prometheus at the app port and Grafana at the compose services', () => {
    const prometheus = parseYamlFile<{ scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[] }[] }>(
      'prometheus/prometheus.yml',
    );
    const job = prometheus.scrape_configs.find((config) => config.job_name === 'chatter');
    const sd = job?.dns_sd_configs?.[0];
    expect(sd?.names).toEqual(['app']);
    expect(String(sd?.port)).toBe(environmentOf(service('app')).PORT);
    for (const datasource of datasources) {
      const host = new URL(datasource.url.includes('://') ? datasource.url : `tcp://${datasource.url}`).hostname;
      expect(Object.keys(compose.services), `${datasource.name} points at ${host}`).toContain(host);
    }
  });
});

describe('Grafana provisioning', () => {
  it('provisions the Prometheus, Jaeger and PostgreSQL datasources under fixed uids', () => {
    expect(datasources.map((datasource) => [datasource.uid, datasource.type])).toEqual([
      ['prometheus', 'prometheus'],
      ['jaeger', 'jaeger'],
      ['postgres', 'grafana-postgresql-datasource'],
    ]);
  });

  it("takes the datasources' secrets from variables the grafana service sets", () => {
    const environment = environmentOf(service('grafana'));
    const referenced = datasources.flatMap((datasource) =>
      Object.values(datasource.secureJsonData ?? {}).flatMap((value) => [...value.matchAll(/\$\{(\w+)\}/g)].map((match) => match[1] ?? '')),
    );
    expect(referenced.length).toBeGreaterThan(0);
    for (const name of referenced) {
      expect(Object.keys(environment)).toContain(name);
    }
  });

  it('loads dashboards from a folder the grafana service mounts from grafana/dashboards', () => {
    const mounts = bindMounts(service('grafana'));
    expect(repoPathOf('/etc/grafana/provisioning/datasources/datasources.yaml', mounts)).toBe(
      'grafana/provisioning/datasources/datasources.yaml',
    );
    for (const provider of dashboardProviders) {
      const source = repoPathOf(provider.options.path, mounts);
      expect(source, `${provider.options.path} is not mounted`).toBeDefined();
      expect(isDirectory(source ?? '')).toBe(true);
      expect(readdirSync(join(REPO_ROOT, source ?? '')).filter((file) => file.endsWith('.json')).length).toBe(dashboards.length);
    }
  });

  it('gives every dashboard a unique uid and title, the shared tag, unique panel ids and provisioned datasources only', () => {
    const uids = new Set(datasources.map((datasource) => `${datasource.type}/${datasource.uid}`));
    const problems: string[] = [];
    for (const { file, dashboard } of dashboards) {
      if (!dashboard.tags?.includes('chatter')) problems.push(`${file}: no "chatter" tag (the dashboards' link menu lists by tag)`);
      const ids = allPanels(dashboard).map((panel) => panel.id);
      if (new Set(ids).size !== ids.length) problems.push(`${file}: duplicate panel ids`);
      const refs: (Datasource | null | undefined)[] = [
        ...allPanels(dashboard).flatMap((panel) => [panel.datasource, ...(panel.targets ?? []).map((target) => target.datasource)]),
        ...(dashboard.templating?.list ?? []).map((variable) => variable.datasource),
      ];
      for (const ref of refs) {
        if (ref?.uid !== undefined && !uids.has(`${ref.type}/${ref.uid}`))
          problems.push(`${file}: unknown datasource ${ref.type}/${ref.uid}`);
      }
    }
    expect(problems).toEqual([]);
    expect(new Set(dashboards.map(({ dashboard }) => dashboard.uid)).size).toBe(dashboards.length);
    expect(new Set(dashboards.map(({ dashboard }) => dashboard.title)).size).toBe(dashboards.length);
  });

  it('links panels to traces in Jaeger', () => {
    const links = dashboards.flatMap(({ dashboard }) => JSON.stringify(dashboard).match(/\/explore\?[^"]*jaeger[^"]*/g) ?? []);
    expect(links.length).toBeGreaterThanOrEqual(dashboards.length);
    for (const { file, dashboard } of dashboards) {
      expect(JSON.stringify(dashboard), `${file} has no trace link`).toMatch(/%22uid%22%3A%22jaeger%22/);
    }
  });
});

describe('Dockerfile', () => {
  // Continuation lines joined, so that one instruction is one line.
  const dockerfile = readRepoFile('Dockerfile').replace(/\\\n\s*/g, ' ');
  const ignore = readRepoFile('.dockerignore').split('\n');

  it('copies only repository paths that .dockerignore lets into the build context', () => {
    const sources = dockerfileContextSources(dockerfile);
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(repoPathExists(source), `${source} does not exist`).toBe(true);
      expect(includedInContext(source, ignore), `${source} is excluded by .dockerignore`).toBe(true);
    }
    for (const secretish of ['.env', '.git', 'node_modules', '.chatter', 'test']) {
      expect(includedInContext(secretish, ignore), `${secretish} is sent to the build`).toBe(false);
    }
  });

  it('runs as a non-root user with a health check on /healthz from a pinned Node 24 image', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24\.\d+\.\d+-[\w-]+$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\/healthz/m);
    const stages = dockerfile.match(/^FROM /gm) ?? [];
    expect(stages.length).toBeGreaterThanOrEqual(2);
  });
});
