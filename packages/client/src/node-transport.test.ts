import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeTransport } from './node.ts';

let server: Server;
let url: string;
const seen: Array<{ method?: string; body: string; auth?: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      seen.push({ method: req.method, body, auth: req.headers.authorization });
      if (req.url === '/hang') return; // never answers
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json' });
      res.end(
        req.url === '/missing'
          ? '{"error":{"code":"NOT_FOUND","message":"no"}}'
          : `{"echo":${body || 'null'}}`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('nodeTransport', () => {
  const send = nodeTransport();

  it('sends the method, headers and body and gives back status and text', async () => {
    const answer = await send({
      method: 'POST',
      url: `${url}/echo`,
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
      body: '{"é":1}',
      signal: undefined,
      timeoutMs: 5000,
    });
    expect(answer).toMatchObject({ status: 200, text: '{"echo":{"é":1}}' });
    expect(seen.at(-1)).toEqual({ method: 'POST', body: '{"é":1}', auth: 'Bearer t' });
    const missing = await send({
      method: 'GET',
      url: `${url}/missing`,
      headers: {},
      body: undefined,
      signal: undefined,
      timeoutMs: 5000,
    });
    expect(missing.status).toBe(404);
  });

  it('rejects when the time limit passes or the caller aborts', async () => {
    await expect(
      send({
        method: 'GET',
        url: `${url}/hang`,
        headers: {},
        body: undefined,
        signal: undefined,
        timeoutMs: 100,
      }),
    ).rejects.toThrow(/within 100 ms/);
    const abort = new AbortController();
    const pending = send({
      method: 'GET',
      url: `${url}/hang`,
      headers: {},
      body: undefined,
      signal: abort.signal,
      timeoutMs: 5000,
    });
    abort.abort();
    await expect(pending).rejects.toThrow(/abort/i);
  });

  it('rejects when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(
      send({
        method: 'GET',
        url: `http://127.0.0.1:${port}/`,
        headers: {},
        body: undefined,
        signal: undefined,
        timeoutMs: 5000,
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
