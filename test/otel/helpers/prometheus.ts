import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Sample = { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly value: number };

export type Scrape = {
  readonly status: number;
  readonly contentType: string | null;
  readonly text: string;
  readonly samples: readonly Sample[];
};

/** GETs /metrics from `handler` served by a real HTTP server on 127.0.0.1:0. */
export const scrape = async (handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<Scrape> => {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    const text = await response.text();
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      text,
      samples: response.ok ? parsePrometheusText(text) : [],
    };
  } finally {
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  }
};

const unescape = (value: string): string => value.replace(/\\(["\\n])/g, (_match, char: string) => (char === 'n' ? '\n' : char));

/** Parses the sample lines of the Prometheus text format (comments are skipped). */
export const parsePrometheusText = (text: string): Sample[] => {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (match === null) throw new Error(`unparseable sample line: ${line}`);
    const [, name = '', rawLabels = '', rawValue = ''] = match;
    const labels: Record<string, string> = {};
    for (const label of rawLabels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1] ?? ''] = unescape(label[2] ?? '');
    }
    const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue);
    samples.push({ name, labels, value });
  }
  return samples;
};

const matches = (sample: Sample, labels: Readonly<Record<string, string>>): boolean =>
  Object.entries(labels).every(([key, value]) => sample.labels[key] === value);

/** The samples named `name` whose labels include `labels`. */
export const select = (samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): Sample[] =>
  samples.filter((sample) => sample.name === name && matches(sample, labels));

/** Sum of the values of the selected samples (0 when none). */
export const total = (samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number =>
  select(samples, name, labels).reduce((sum, sample) => sum + sample.value, 0);
