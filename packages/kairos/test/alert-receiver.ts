import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One request a receiver got, raw. */
export interface Received {
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/**
 * A local HTTP server standing in for a webhook endpoint or a chat platform: it records every
 * request and answers what the test says (200 `{"code":0,"errcode":0}` by default).
 */
export class Receiver {
  readonly received: Received[] = [];
  /** The status and body of the next answers. */
  answer: { status: number; body: string } = { status: 200, body: '{"code":0,"errcode":0}' };
  /** How many of the next requests are recorded and never answered (a sender that hangs mid-delivery). */
  hold = 0;
  private server: Server | undefined;
  private waiters: Array<() => void> = [];
  url = '';

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const url = new URL(request.url ?? '/', 'http://x');
        this.received.push({
          path: url.pathname,
          query: url.searchParams,
          headers: request.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at: Date.now(),
        });
        if (this.hold > 0) {
          this.hold--;
          for (const wake of this.waiters.splice(0)) wake();
          return;
        }
        response.writeHead(this.answer.status, { 'content-type': 'application/json' });
        response.end(this.answer.body);
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Waits until `count` requests arrived (or `timeoutMs` passed). */
  async until(count: number, timeoutMs = 20_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

/** A local SMTP server that keeps every message it is given, with the envelope. */
export class MailReceiver {
  readonly messages: Array<{ from: string; to: string[]; raw: string; user: string | undefined }> = [];
  private server: SMTPServer | undefined;
  port = 0;

  async start(credentials?: { user: string; password: string }): Promise<this> {
    this.server = new SMTPServer({
      disabledCommands: credentials ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !credentials,
      allowInsecureAuth: true,
      logger: false,
      onAuth(auth, _session, callback) {
        if (credentials && auth.username === credentials.user && auth.password === credentials.password)
          callback(null, { user: auth.username });
        else callback(new Error('invalid credentials'));
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          this.messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
            user: session.user as string | undefined,
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

// How each receiving platform checks a request, written from its documentation, apart from the sender.

const FIVE_MINUTES_S = 300;
const ONE_HOUR_MS = 3_600_000;

/** A Kairos webhook receiver: `Kairos-Signature: t=…,v1=…` over "<t>.<raw body>", within 5 minutes. */
export function verifyKairosWebhook(request: Received, secret: string, nowMs = Date.now()): boolean {
  const header = String(request.headers['kairos-signature'] ?? '');
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowMs / 1000 - t) > FIVE_MINUTES_S) return false;
  const expected = createHmac('sha256', secret).update(`${parts.t}.${request.body}`).digest();
  const given = Buffer.from(parts.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Feishu/Lark: HMAC-SHA256 with key "<timestamp>\n<secret>" over nothing, base64, within an hour. */
export function verifyFeishu(request: Received, secret: string, nowMs = Date.now()): boolean {
  const body = JSON.parse(request.body) as { timestamp?: string; sign?: string };
  if (!body.timestamp || Math.abs(nowMs - Number(body.timestamp) * 1000) > ONE_HOUR_MS) return false;
  const expected = createHmac('sha256', `${body.timestamp}\n${secret}`).digest('base64');
  return body.sign === expected;
}

/** DingTalk: query `timestamp` (ms) and `sign` = base64(HMAC-SHA256(secret, "<timestamp>\n<secret>")), within an hour. */
export function verifyDingtalk(request: Received, secret: string, nowMs = Date.now()): boolean {
  const timestamp = request.query.get('timestamp');
  if (!timestamp || Math.abs(nowMs - Number(timestamp)) > ONE_HOUR_MS) return false;
  const expected = createHmac('sha256', secret).update(`${timestamp}\n${secret}`).digest('base64');
  return request.query.get('sign') === expected;
}
