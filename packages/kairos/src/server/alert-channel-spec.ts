import type { AlertChannel, AlertChannelSpec } from '@kairos/client';
import { KairosError } from '../errors.ts';
import type { ChannelDefinition, ChannelRecord } from '../store/alerts.ts';

const SIGNED: ReadonlySet<string> = new Set(['webhook', 'feishu', 'dingtalk']);

/**
 * Validates a channel spec into what the store keeps: the URL and secrets apart from what may be
 * shown. `previous` is the stored channel a PUT replaces: a URL, secret or SMTP password the spec
 * leaves out is kept from it (clients never see them, so they cannot send them back).
 */
export function compileChannel(spec: AlertChannelSpec, previous: ChannelRecord | null): ChannelDefinition {
  const invalid = (field: string, message: string) =>
    new KairosError('INVALID_CHANNEL', `${field}: ${message}`, { field });
  const keep = previous?.type === spec.type ? previous : null;
  if (spec.type === 'email') {
    if (spec.url !== undefined) throw invalid('url', 'an email channel takes smtp, not a url');
    if (spec.secret !== undefined)
      throw invalid('secret', 'an email channel takes smtp.password, not a secret');
    if (!spec.smtp) throw invalid('smtp', 'an email channel needs smtp: host, port, from, to');
    const password = spec.smtp.password ?? keep?.secrets.password;
    if (password !== undefined && spec.smtp.user === undefined)
      throw invalid('smtp.user', 'a password needs a user');
    return {
      name: spec.name,
      type: 'email',
      config: {
        urlOrigin: null,
        smtp: {
          host: spec.smtp.host,
          port: spec.smtp.port,
          secure: spec.smtp.secure ?? spec.smtp.port === 465,
          user: spec.smtp.user ?? null,
          from: spec.smtp.from,
          to: [...spec.smtp.to],
        },
      },
      secrets: password === undefined || spec.smtp.user === undefined ? {} : { password },
    };
  }
  if (spec.smtp !== undefined) throw invalid('smtp', `a ${spec.type} channel takes a url, not smtp`);
  const url = spec.url ?? keep?.secrets.url;
  if (url === undefined) throw invalid('url', `a ${spec.type} channel needs a url`);
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    throw invalid('url', 'not a URL');
  }
  if (spec.secret !== undefined && !SIGNED.has(spec.type))
    throw invalid('secret', `a ${spec.type} channel has no signing secret (its URL carries the token)`);
  const secret = spec.secret ?? (SIGNED.has(spec.type) ? keep?.secrets.secret : undefined);
  return {
    name: spec.name,
    type: spec.type,
    config: { urlOrigin: origin, smtp: null },
    secrets: secret === undefined ? { url } : { url, secret },
  };
}

/** The channel as the API answers it: never a secret, never the URL past its origin. */
export function describeChannel(channel: ChannelRecord): AlertChannel {
  const smtp = channel.config.smtp;
  return {
    name: channel.name,
    type: channel.type,
    url: channel.config.urlOrigin === null ? null : `${channel.config.urlOrigin}/…`,
    secretSet: channel.secrets.secret !== undefined,
    smtp: smtp && {
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      user: smtp.user,
      passwordSet: channel.secrets.password !== undefined,
      from: smtp.from,
      to: smtp.to,
    },
    createdAt: new Date(channel.createdAt).toISOString(),
    updatedAt: new Date(channel.updatedAt).toISOString(),
  };
}
