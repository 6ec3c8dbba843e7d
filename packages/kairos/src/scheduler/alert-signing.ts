import { createHmac } from 'node:crypto';

/**
 * The signing schemes of alert channels, each as the receiving platform checks it.
 *
 * - Kairos webhook: `Kairos-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 *   A receiver recomputes it over the raw body, compares in constant time, and refuses a timestamp
 *   older than its tolerance (5 minutes is usual) so that a captured request cannot be replayed.
 * - Feishu/Lark custom bot: `sign = base64(HMAC-SHA256(key = "<unix seconds>\n<secret>", message = ""))`,
 *   sent with `timestamp` in the JSON body; the platform refuses a timestamp more than an hour off.
 * - DingTalk custom robot: `sign = urlencode(base64(HMAC-SHA256(key = secret, message = "<unix ms>\n<secret>")))`,
 *   sent as the `timestamp` and `sign` query parameters; refused more than an hour off.
 * - WeCom group bots and Slack incoming webhooks have no signature: the token in the URL is the secret.
 */

/** The `Kairos-Signature` header of a webhook body sent at `now` (epoch ms). */
export function webhookSignature(secret: string, body: string, now: number): string {
  const t = Math.floor(now / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

/** Feishu/Lark: the `timestamp` (seconds, as a string) and `sign` fields of the JSON body. */
export function feishuSign(secret: string, now: number): { timestamp: string; sign: string } {
  const timestamp = String(Math.floor(now / 1000));
  const sign = createHmac('sha256', `${timestamp}\n${secret}`).update('').digest('base64');
  return { timestamp, sign };
}

/** DingTalk: the URL with its `timestamp` (ms) and `sign` query parameters added. */
export function dingtalkSignedUrl(url: string, secret: string, now: number): string {
  const timestamp = String(Math.floor(now));
  const sign = createHmac('sha256', secret).update(`${timestamp}\n${secret}`).digest('base64');
  const signed = new URL(url);
  signed.searchParams.set('timestamp', timestamp);
  signed.searchParams.set('sign', sign);
  return signed.toString();
}
