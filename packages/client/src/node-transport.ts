import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Transport } from './client.ts';

/**
 * Requests over `node:http(s)` with kept-alive connections, for Node.js (`@kairos/client/node`):
 * `fetch` costs several times more CPU per request (web streams, an AbortSignal per request and per
 * time limit), which a worker or a busy producer pays on every call.
 *
 * ```ts
 * const kairos = new KairosClient({ url, token, transport: nodeTransport() });
 * ```
 */
export function nodeTransport(): Transport {
  const http = new HttpAgent({ keepAlive: true });
  const https = new HttpsAgent({ keepAlive: true });
  return ({ method, url, headers, body, signal, timeoutMs }) =>
    new Promise((resolve, reject) => {
      const target = new URL(url);
      const secure = target.protocol === 'https:';
      const request = (secure ? httpsRequest : httpRequest)(target, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
        agent: secure ? https : http,
        ...(signal ? { signal } : {}),
      });
      const timer = setTimeout(
        () => request.destroy(new Error(`no answer from ${target.origin} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      request.on('error', fail);
      request.on('response', (response: IncomingMessage) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('error', fail);
        response.on('end', () => {
          clearTimeout(timer);
          resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', text });
        });
      });
      request.end(body);
    });
}
