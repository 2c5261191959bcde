import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, createTestApi, registerUser, type RegisteredUser, type TestApi } from '../helpers/api.js';

/** Sends raw bytes over a real connection and returns the whole answer (the server closes it). */
const rawRequest = (port: number, request: string | Buffer): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });

describe('error bodies', () => {
  let api: TestApi;
  let user: RegisteredUser;
  let port: number;
  beforeAll(async () => {
    api = await createTestApi();
    user = await registerUser(api.app);
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    port = (api.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await api.close();
  });

  const conversations = async () =>
    api.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM conversations`);

  it('answers every framework error with its own status and code, never a FST_ code or message', async () => {
    const as = asUser(api.app, user);
    const cases = [
      {
        response: await as({
          method: 'POST',
          url: '/api/v1/conversations/',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ title: 'x'.repeat(2 * 1024 * 1024) }),
        }),
        status: 413,
        body: { detail: 'Request body is larger than the limit of 1048576 bytes', code: 'payload_too_large' },
      },
      {
        response: await as({ method: 'GET', url: `/api/v1/conversations/${'x'.repeat(300)}` }),
        status: 414,
        body: { detail: 'A path parameter is too long', code: 'uri_too_long' },
      },
      {
        response: await as({
          method: 'POST',
          url: '/api/v1/conversations/',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'title=t',
        }),
        status: 415,
        body: { detail: expect.stringMatching(/^Unsupported media type/), code: 'unsupported_media_type' },
      },
      {
        response: await as({
          method: 'POST',
          url: '/api/v1/conversations/',
          headers: { 'content-type': 'application/xml' },
          payload: '<title/>',
        }),
        status: 415,
        body: { detail: expect.stringMatching(/^Unsupported media type/), code: 'unsupported_media_type' },
      },
      {
        response: await as({
          method: 'POST',
          url: '/api/v1/conversations/',
          headers: { 'content-type': 'application/json' },
          payload: '{"title": ',
        }),
        status: 422,
        body: { detail: [{ loc: ['body'], msg: 'The body is not valid JSON', type: 'json_invalid' }] },
      },
      {
        response: await as({
          method: 'POST',
          url: '/api/v1/conversations/',
          headers: { 'content-type': 'application/json' },
          payload: '{"title":"t","__proto__":{"admin":true}}',
        }),
        status: 422,
        body: { detail: [{ loc: ['body'], msg: 'The body is not valid JSON', type: 'json_invalid' }] },
      },
      {
        response: await as({ method: 'POST', url: '/api/v1/conversations/', headers: { 'content-type': 'application/json' }, payload: '' }),
        status: 422,
        body: { detail: [{ loc: ['body'], msg: expect.stringMatching(/empty/), type: 'json_invalid' }] },
      },
      {
        response: await as({ method: 'GET', url: '/api/v1/conversations/%E0%A4%A' }),
        status: 400,
        body: { detail: 'Malformed URL', code: 'bad_request' },
      },
    ];
    for (const { response, status, body } of cases) {
      expect(response.statusCode, response.body).toBe(status);
      expect(response.json()).toEqual(body);
      expect(response.body).not.toMatch(/FST_|Fastify|fastify|at .*\.js:\d+/);
    }
  });

  it('answers a body shorter than its Content-Length over a real connection with a 400 in the same shape', async () => {
    const body = '{"title":"t"}';
    const answer = await rawRequest(
      port,
      `POST /api/v1/conversations/ HTTP/1.1\r\nHost: x\r\nAuthorization: ${user.auth.authorization}\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 10}\r\nConnection: close\r\n\r\n${body}`,
    );
    // The server waits for the missing bytes, then the half-closed socket ends the body early.
    expect(answer.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 400/);
    expect(answer).not.toMatch(/FST_/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ detail: expect.any(String), code: 'bad_request' });
  });

  it('refuses a JSON body that is not UTF-8 with 422 and stores nothing (no U+FFFD in its place)', async () => {
    const before = await conversations();
    const as = asUser(api.app, user);
    const invalid = [
      Buffer.from([...Buffer.from('{"title":"caf'), 0xe9, ...Buffer.from('"}')]), // Latin-1 é
      Buffer.from([...Buffer.from('{"title":"'), 0xed, 0xa0, 0x80, ...Buffer.from('"}')]), // encoded surrogate
      Buffer.from([...Buffer.from('{"title":"'), 0xc0, 0xaf, ...Buffer.from('"}')]), // overlong
      Buffer.from([...Buffer.from('{"title":"'), 0xf0, 0x9f, 0x98, ...Buffer.from('"}')]), // truncated emoji
    ];
    for (const payload of invalid) {
      const response = await as({
        method: 'POST',
        url: '/api/v1/conversations/',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        payload,
      });
      expect(response.statusCode, response.body).toBe(422);
      expect(response.json()).toEqual({ detail: [{ loc: ['body'], msg: 'The body is not valid UTF-8', type: 'utf8_invalid' }] });
    }
    expect(await conversations()).toBe(before);
    const valid = await as({
      method: 'POST',
      url: '/api/v1/conversations/',
      headers: { 'content-type': 'application/json' },
      payload: Buffer.from('{"title":"café 😀"}'),
    });
    expect(valid.statusCode, valid.body).toBe(201);
    expect(valid.json()).toMatchObject({ title: 'café 😀' });
  });
});
