import type { JsonObject } from '@kairos/client';
import nodemailer from 'nodemailer';
import type { ChannelRecord } from '../store/alerts.ts';
import { dingtalkSignedUrl, feishuSign, webhookSignature } from './alert-signing.ts';

/** One alert (or test message) as every channel renders it. */
export interface AlertMessage {
  /** The same on every retry and every channel: receivers deduplicate by it. */
  eventId: string;
  rule: string | null;
  subject: string;
  state: 'firing' | 'resolved' | 'test';
  title: string;
  text: string;
  details: JsonObject;
  /** Epoch ms of this sending attempt (signatures carry it). */
  at: number;
}

/**
 * Sends one message through one channel; throws with a reason when the channel did not take it.
 * `signal` ends an HTTP request early (the node stops).
 */
export type AlertSender = (
  channel: ChannelRecord,
  message: AlertMessage,
  signal?: AbortSignal,
) => Promise<void>;

export interface SenderOptions {
  /** Per sending attempt. Default 10 s. */
  timeoutMs?: number;
}

/** The sender of every channel type: HTTP posts with `fetch`, email with nodemailer. */
export function createAlertSender(options: SenderOptions = {}): AlertSender {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return async (channel, message, signal) => {
    try {
      if (channel.type === 'email') await sendEmail(channel, message, timeoutMs);
      else await post(channel, message, timeoutMs, signal);
    } catch (error) {
      // A driver's message may quote the URL, which carries the platform's token: never pass it on.
      throw new Error(scrub((error as Error).message, channel), { cause: undefined });
    }
  };
}

/** The JSON body of the generic webhook. */
export function webhookBody(message: AlertMessage): string {
  return JSON.stringify({
    eventId: message.eventId,
    state: message.state,
    rule: message.rule,
    subject: message.subject,
    title: message.title,
    text: message.text,
    details: message.details,
    at: new Date(message.at).toISOString(),
  });
}

function chatText(message: AlertMessage): string {
  const mark =
    message.state === 'firing' ? '[FIRING]' : message.state === 'resolved' ? '[RESOLVED]' : '[TEST]';
  return `${mark} ${message.title}\n${message.text}`;
}

async function post(
  channel: ChannelRecord,
  message: AlertMessage,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const url = channel.secrets.url;
  if (!url) throw new Error('the channel has no URL');
  const secret = channel.secrets.secret;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  let target = url;
  let body: string;
  switch (channel.type) {
    case 'webhook':
      body = webhookBody(message);
      headers['kairos-event-id'] = message.eventId;
      if (secret) headers['kairos-signature'] = webhookSignature(secret, body, message.at);
      break;
    case 'slack':
      body = JSON.stringify({ text: `*${message.title}*\n${message.text}` });
      break;
    case 'feishu':
      body = JSON.stringify({
        ...(secret ? feishuSign(secret, message.at) : {}),
        msg_type: 'text',
        content: { text: chatText(message) },
      });
      break;
    case 'dingtalk':
      if (secret) target = dingtalkSignedUrl(url, secret, message.at);
      body = JSON.stringify({ msgtype: 'text', text: { content: chatText(message) } });
      break;
    case 'wecom':
      body = JSON.stringify({ msgtype: 'text', text: { content: chatText(message) } });
      break;
    default:
      throw new Error(`cannot post to a ${channel.type} channel`);
  }
  const response = await fetch(target, {
    method: 'POST',
    headers,
    body,
    redirect: 'manual',
    signal: signal
      ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
      : AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text().catch(() => '');
  if (!response.ok) throw new Error(`HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  // The chat platforms answer 200 with an error code in the body for a bad signature or token.
  if (channel.type === 'feishu' || channel.type === 'dingtalk' || channel.type === 'wecom') {
    let answer: { code?: unknown; errcode?: unknown; msg?: unknown; errmsg?: unknown } = {};
    try {
      answer = JSON.parse(text);
    } catch {
      throw new Error(`unexpected answer: ${text.slice(0, 200)}`);
    }
    const code = answer.code ?? answer.errcode ?? 0;
    if (code !== 0)
      throw new Error(`refused (${String(code)}): ${String(answer.msg ?? answer.errmsg ?? '')}`);
  }
}

async function sendEmail(channel: ChannelRecord, message: AlertMessage, timeoutMs: number): Promise<void> {
  const smtp = channel.config.smtp;
  if (!smtp) throw new Error('the channel has no SMTP settings');
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    ...(smtp.user ? { auth: { user: smtp.user, pass: channel.secrets.password ?? '' } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  try {
    await transport.sendMail({
      from: smtp.from,
      to: smtp.to,
      subject: `${message.state === 'resolved' ? '[RESOLVED] ' : message.state === 'test' ? '[TEST] ' : ''}${message.title}`,
      text: `${message.text}\n\n${JSON.stringify(message.details, null, 2)}\n\nAlert id: ${message.eventId}\n`,
      headers: { 'X-Kairos-Event-Id': message.eventId },
    });
  } finally {
    transport.close();
  }
}

/** Removes the channel's URL and secrets from a text. */
export function scrub(text: string, channel: ChannelRecord): string {
  let out = text;
  for (const secret of [channel.secrets.url, channel.secrets.secret, channel.secrets.password]) {
    if (secret) out = out.split(secret).join('***');
  }
  return out;
}
