import type { Socket } from 'node:net';
import type { ErrorCode } from '@kairos/client';
import { ERROR_CODES } from '@kairos/client';
import { body } from './error-handler.ts';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/**
 * Answers what Node's HTTP parser refuses before Fastify sees a request (headers over Node's limit
 * of 16 KiB, a request that is not HTTP, one that took too long to arrive) in the house shape
 * `{ error: { code, message } }`, written on the socket as Fastify's own handler does, then closes it.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'HEADERS_TOO_LARGE'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'REQUEST_TIMEOUT'
        : 'MALFORMED_REQUEST';
  const message =
    {
      HEADERS_TOO_LARGE: 'the request headers are larger than the node accepts (16 KiB)',
      REQUEST_TIMEOUT: 'the request did not arrive in time',
    }[code as string] ?? 'the request is not valid HTTP';
  const status = ERROR_CODES[code];
  const text = JSON.stringify(body(code, message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
  }
  socket.destroy(error);
}
