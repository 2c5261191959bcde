import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness } from '../helpers/run-harness.js';

type Received = { path: string; contentType: string | undefined; bytes: Buffer };

/** A loopback OTLP/HTTP receiver that records what it is sent. */
const startReceiver = async (): Promise<{ url: string; received: Received[]; server: Server }> => {
  const received: Received[] = [];
  const server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ path: request.url ?? '', contentType: request.headers['content-type'], bytes: Buffer.concat(chunks) });
      response.writeHead(200, { 'content-type': 'application/x-protobuf' });
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, server };
};

describe('OTLP trace export', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await new Promise((resolve) => receiver.server.close(resolve));
  });

  const usage = { input_tokens: 9, output_tokens: 3 };

  it('sends sampled spans as OTLP/HTTP protobuf to the configured endpoint, without message content', async () => {
    const h = await createHarness({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
    try {
      h.script([{ content: 'a secret answer text', usage }]);
      const turn = await h.startTurn({ correlationId: 'otlp-corr-1' });
      await turn.done;
      await h.services.tracerProvider.forceFlush();
      const traces = receiver.received.filter((request) => request.path === '/v1/traces');
      expect(traces.length).toBeGreaterThan(0);
      expect(traces[0]!.contentType).toBe('application/x-protobuf');
      const payload = Buffer.concat(traces.map((request) => request.bytes)).toString('latin1');
      expect(payload).toContain('invoke_workflow chat');
      expect(payload).toContain('otlp-corr-1');
      expect(payload).toContain(turn.runId);
      expect(payload).not.toContain('a secret answer text');
    } finally {
      await h.close();
    }
  });

  it('sends nothing for unsampled traces while the run is still recorded', async () => {
    receiver.received.length = 0;
    const h = await createHarness({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: 'always_off' });
    try {
      h.script([{ content: 'unsampled', usage }]);
      const outcome = await (await h.startTurn({})).done;
      await h.services.tracerProvider.forceFlush();
      expect(receiver.received.filter((request) => request.path === '/v1/traces')).toEqual([]);
      expect(outcome.durable).toBe('database');
    } finally {
      await h.close();
    }
  });
});
