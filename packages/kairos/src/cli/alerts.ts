import {
  ALERT_KINDS,
  type AlertChannel,
  type AlertChannelSpec,
  type AlertDelivery,
  type AlertKind,
  type AlertRule,
  type AlertRuleSpec,
  CHANNEL_TYPES,
} from '@kairos/client';
import { type Command, Option } from 'commander';
import { formatDuration, formatTime, keyValues, printJson, table, truncate } from './format.ts';
import {
  clientFrom,
  durationFlagMs,
  type GlobalFlags,
  parseDurationFlag,
  parseInstant,
  parseIntFlag,
  UsageError,
} from './options.ts';

interface RuleFlags {
  kind?: string;
  job?: string;
  group?: string;
  threshold?: string;
  count?: string;
  reason?: string[];
  unroutableOnly?: boolean;
  channel?: string[];
  window?: string;
  disabled?: boolean;
}

interface ChannelFlags {
  type?: string;
  webhook?: string;
  webhookEnv?: string;
  secretEnv?: string;
  smtpHost?: string;
  smtpPort?: string;
  smtpSecure?: boolean;
  smtpUser?: string;
  smtpPasswordEnv?: string;
  from?: string;
  to?: string[];
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Registers `kairos alerts …` (rules, what fires now, silences, the delivery history). */
export function registerAlerts(program: Command): void {
  const alerts = program
    .command('alerts')
    .description('alert rules, alerts firing now, silences and the delivery history (docs/alerts.md)');

  alerts
    .command('list')
    .description('list alert rules')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const { items } = await clientFrom(flags).listAlertRules();
      if (flags.json) return printJson(items);
      if (items.length === 0)
        return console.log('no alert rules yet: create one with `kairos alerts put --help`');
      console.log(
        table(
          ['NAME', 'KIND', 'SCOPE', 'CONDITION', 'CHANNELS', 'WINDOW', 'ENABLED'],
          items.map((r) => [
            r.name,
            r.kind,
            scope(r),
            condition(r),
            r.channels.join(','),
            formatDuration(r.window),
            r.enabled ? 'yes' : 'no',
          ]),
        ),
      );
    });

  alerts
    .command('get')
    .argument('<name>', 'rule name')
    .description('show an alert rule')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const rule = await clientFrom(flags).getAlertRule(name);
      if (flags.json) return printJson(rule);
      console.log(
        keyValues([
          ['name', rule.name],
          ['kind', rule.kind],
          ['scope', scope(rule)],
          ['condition', condition(rule) || undefined],
          ['channels', rule.channels.join(', ')],
          ['window', formatDuration(rule.window)],
          ['enabled', rule.enabled ? 'yes' : 'no'],
        ]),
      );
    });

  alerts
    .command('put')
    .argument('<name>', 'rule name')
    .description('create an alert rule or replace it')
    .addOption(new Option('--kind <kind>', 'what alerts').choices([...ALERT_KINDS]).makeOptionMandatory())
    .option('--job <name>', 'scope: one job')
    .option('--group <name>', 'scope: every job (or worker) of a group')
    .option('--threshold <duration>', 'run-queued, fire-late: how long is too long; no-success: the period')
    .option('--count <n>', 'consecutive-failures: failed runs in a row')
    .option('--reason <reason>', 'fire-skipped: a reason that alerts (repeatable; default all)', collect)
    .option('--unroutable-only', 'run-queued: only runs no live worker can take')
    .option('--channel <name>', 'a channel to notify (repeatable, at least one)', collect)
    .option('--window <duration>', 'one alert per rule and subject per window (default 1h)')
    .option('--disabled', 'save the rule without evaluating it')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & RuleFlags>();
      const rule = await clientFrom(flags).putAlertRule(ruleSpecFromFlags(name, flags));
      if (flags.json) return printJson(rule);
      console.log(`saved alert rule ${rule.name}: ${rule.kind} ${scope(rule)} → ${rule.channels.join(', ')}`);
    });

  alerts
    .command('delete')
    .argument('<name>', 'rule name')
    .description('delete an alert rule (its open alerts go with it)')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      await clientFrom(flags).deleteAlertRule(name);
      if (flags.json) return printJson({ deleted: name });
      console.log(`deleted alert rule ${name}`);
    });

  alerts
    .command('open')
    .description('alerts firing now')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const { items } = await clientFrom(flags).listOpenAlerts();
      if (flags.json) return printJson(items);
      if (items.length === 0) return console.log('nothing is firing');
      console.log(
        table(
          ['RULE', 'SUBJECT', 'FIRED', 'LAST NOTIFIED', 'COUNT'],
          items.map((a) => [
            a.rule,
            a.subject,
            formatTime(a.firedAt),
            formatTime(a.notifiedAt),
            String(a.count),
          ]),
        ),
      );
    });

  alerts
    .command('deliveries')
    .description('the delivery history, newest first')
    .option('--channel <name>', 'only this channel')
    .option('--rule <name>', 'only this rule')
    .addOption(
      new Option('--status <status>', 'only this status').choices(['pending', 'sent', 'failed', 'silenced']),
    )
    .option('--limit <n>', 'how many (default 50)')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<
        GlobalFlags & { channel?: string; rule?: string; status?: 'pending'; limit?: string }
      >();
      const { items } = await clientFrom(flags).listAlertDeliveries({
        ...(flags.channel ? { channel: flags.channel } : {}),
        ...(flags.rule ? { rule: flags.rule } : {}),
        ...(flags.status ? { status: flags.status } : {}),
        ...(flags.limit ? { limit: parseIntFlag(flags.limit, '--limit', { min: 1, max: 500 }) } : {}),
      });
      if (flags.json) return printJson(items);
      if (items.length === 0) return console.log('no deliveries');
      console.log(
        table(['ID', 'CREATED', 'CHANNEL', 'STATE', 'STATUS', 'TRIES', 'TITLE'], items.map(deliveryRow)),
      );
    });

  const silences = alerts
    .command('silence')
    .description('quiet alerts for a while: they are recorded, not sent');
  silences
    .command('add')
    .description('silence one rule, or every rule')
    .option('--rule <name>', 'the rule (default: every rule)')
    .option('--for <duration>', 'how long from now (or --until)')
    .option('--until <instant>', 'when it ends')
    .option('--from <instant>', 'when it starts (default now)')
    .option('--comment <text>', 'why')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<
        GlobalFlags & { rule?: string; for?: string; until?: string; from?: string; comment?: string }
      >();
      if ((flags.for === undefined) === (flags.until === undefined))
        throw new UsageError('give --for <duration> or --until <instant>');
      const start = flags.from ? Date.parse(parseInstant(flags.from, '--from')) : Date.now();
      const endsAt =
        flags.until !== undefined
          ? parseInstant(flags.until, '--until')
          : new Date(start + durationFlagMs(flags.for!, '--for')).toISOString();
      const silence = await clientFrom(flags).createAlertSilence({
        ...(flags.rule ? { rule: flags.rule } : {}),
        ...(flags.from ? { startsAt: parseInstant(flags.from, '--from') } : {}),
        endsAt,
        ...(flags.comment ? { comment: flags.comment } : {}),
      });
      if (flags.json) return printJson(silence);
      console.log(
        `silence ${silence.id}: ${silence.rule ?? 'every rule'} until ${formatTime(silence.endsAt)}`,
      );
    });
  silences
    .command('list')
    .description('silences that have not ended')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const { items } = await clientFrom(flags).listAlertSilences();
      if (flags.json) return printJson(items);
      if (items.length === 0) return console.log('no silences');
      console.log(
        table(
          ['ID', 'RULE', 'FROM', 'UNTIL', 'BY', 'COMMENT'],
          items.map((s) => [
            String(s.id),
            s.rule ?? '(every rule)',
            formatTime(s.startsAt),
            formatTime(s.endsAt),
            s.createdBy,
            s.comment,
          ]),
        ),
      );
    });
  silences
    .command('delete')
    .argument('<id>', 'silence id')
    .description('end a silence now')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      await clientFrom(flags).deleteAlertSilence(parseIntFlag(id, 'silence id', { min: 1 }));
      if (flags.json) return printJson({ deleted: Number(id) });
      console.log(`deleted silence ${id}`);
    });
}

/** Registers `kairos channels …`: where alerts go. */
export function registerChannels(program: Command): void {
  const channels = program
    .command('channels')
    .description('where alerts go: webhooks, chat bots (Slack, Feishu/Lark, DingTalk, WeCom), email');

  channels
    .command('list')
    .description('list channels (secrets are never shown)')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const { items } = await clientFrom(flags).listAlertChannels();
      if (flags.json) return printJson(items);
      if (items.length === 0)
        return console.log('no channels yet: create one with `kairos channels put --help`');
      console.log(
        table(
          ['NAME', 'TYPE', 'TARGET', 'SIGNED'],
          items.map((c) => [c.name, c.type, target(c), signed(c)]),
        ),
      );
    });

  channels
    .command('get')
    .argument('<name>', 'channel name')
    .description('show a channel')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const c = await clientFrom(flags).getAlertChannel(name);
      if (flags.json) return printJson(c);
      console.log(
        keyValues([
          ['name', c.name],
          ['type', c.type],
          ['target', target(c)],
          ['signed', signed(c)],
          ['updated', formatTime(c.updatedAt)],
        ]),
      );
    });

  channels
    .command('put')
    .argument('<name>', 'channel name')
    .description(
      'create a channel or replace it; secrets come from environment variables so that they stay out of shell history, and a put without them keeps the stored ones',
    )
    .addOption(new Option('--type <type>', 'channel type').choices([...CHANNEL_TYPES]).makeOptionMandatory())
    .option('--webhook <url>', 'where to post (chat bots: the webhook URL with its token)')
    .option('--webhook-env <var>', 'read the URL to post to from this environment variable instead')
    .option(
      '--secret-env <var>',
      'webhook HMAC key, Feishu or DingTalk signing secret: from this environment variable',
    )
    .option('--smtp-host <host>', 'email: SMTP server')
    .option('--smtp-port <port>', 'email: SMTP port (default 587; 465 implies TLS)')
    .option('--smtp-secure', 'email: TLS from the start')
    .option('--smtp-user <user>', 'email: login')
    .option('--smtp-password-env <var>', 'email: password from this environment variable')
    .option('--from <address>', 'email: sender')
    .option('--to <address>', 'email: a recipient (repeatable)', collect)
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & ChannelFlags>();
      const channel = await clientFrom(flags).putAlertChannel(channelSpecFromFlags(name, flags, process.env));
      if (flags.json) return printJson(channel);
      console.log(`saved ${channel.type} channel ${channel.name}: ${target(channel)}`);
    });

  channels
    .command('delete')
    .argument('<name>', 'channel name')
    .description('delete a channel no rule names')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      await clientFrom(flags).deleteAlertChannel(name);
      if (flags.json) return printJson({ deleted: name });
      console.log(`deleted channel ${name}`);
    });

  channels
    .command('test')
    .argument('<name>', 'channel name')
    .description('send a test message through the channel now')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const delivery = await clientFrom(flags).testAlertChannel(name);
      if (flags.json) return printJson(delivery);
      if (delivery.status === 'sent') return console.log(`sent a test message to ${name}`);
      console.error(`the test message to ${name} failed: ${delivery.lastError ?? 'unknown error'}`);
      process.exitCode = 1;
    });
}

/** The spec of `kairos alerts put NAME` from its flags. */
export function ruleSpecFromFlags(name: string, flags: RuleFlags): AlertRuleSpec {
  if (!flags.channel || flags.channel.length === 0) throw new UsageError('give at least one --channel');
  const spec: AlertRuleSpec = { name, kind: flags.kind as AlertKind, channels: flags.channel };
  if (flags.job !== undefined) spec.job = flags.job;
  if (flags.group !== undefined) spec.group = flags.group;
  if (flags.threshold !== undefined) spec.threshold = parseDurationFlag(flags.threshold, '--threshold');
  if (flags.count !== undefined) spec.count = parseIntFlag(flags.count, '--count', { min: 2, max: 1000 });
  if (flags.reason) spec.reasons = flags.reason as NonNullable<AlertRuleSpec['reasons']>;
  if (flags.unroutableOnly) spec.unroutableOnly = true;
  if (flags.window !== undefined) spec.window = parseDurationFlag(flags.window, '--window');
  if (flags.disabled) spec.enabled = false;
  return spec;
}

/** The spec of `kairos channels put NAME` from its flags and the environment its secrets come from. */
export function channelSpecFromFlags(
  name: string,
  flags: ChannelFlags,
  env: Record<string, string | undefined>,
): AlertChannelSpec {
  const fromEnv = (variable: string, flag: string) => {
    const value = env[variable];
    if (!value) throw new UsageError(`${flag}: environment variable ${variable} is not set`);
    return value;
  };
  const spec: AlertChannelSpec = { name, type: flags.type as AlertChannelSpec['type'] };
  if (flags.webhook !== undefined && flags.webhookEnv !== undefined)
    throw new UsageError('give --webhook or --webhook-env, not both');
  if (flags.webhook !== undefined) spec.url = flags.webhook;
  if (flags.webhookEnv !== undefined) spec.url = fromEnv(flags.webhookEnv, '--webhook-env');
  if (flags.secretEnv !== undefined) spec.secret = fromEnv(flags.secretEnv, '--secret-env');
  if (spec.type === 'email') {
    if (!flags.smtpHost || !flags.from || !flags.to?.length)
      throw new UsageError('an email channel needs --smtp-host, --from and at least one --to');
    spec.smtp = {
      host: flags.smtpHost,
      port: flags.smtpPort ? parseIntFlag(flags.smtpPort, '--smtp-port', { min: 1, max: 65535 }) : 587,
      from: flags.from,
      to: flags.to,
      ...(flags.smtpSecure ? { secure: true } : {}),
      ...(flags.smtpUser ? { user: flags.smtpUser } : {}),
      ...(flags.smtpPasswordEnv ? { password: fromEnv(flags.smtpPasswordEnv, '--smtp-password-env') } : {}),
    };
  }
  return spec;
}

function scope(rule: AlertRule): string {
  if (rule.job) return `job ${rule.job}`;
  if (rule.group) return `group ${rule.group}`;
  return 'everything';
}

function condition(rule: AlertRule): string {
  const parts: string[] = [];
  if (rule.threshold !== null) parts.push(`threshold ${formatDuration(rule.threshold)}`);
  if (rule.count !== null) parts.push(`${rule.count} in a row`);
  if (rule.reasons) parts.push(`reasons ${rule.reasons.join(',')}`);
  if (rule.unroutableOnly) parts.push('no live worker only');
  return parts.join('; ');
}

function target(c: AlertChannel): string {
  if (c.smtp) return `smtp ${c.smtp.host}:${c.smtp.port} → ${c.smtp.to.join(', ')}`;
  return c.url ?? '';
}

function signed(c: AlertChannel): string {
  if (c.type === 'email') return c.smtp?.passwordSet ? 'login' : '-';
  return c.secretSet ? 'yes' : '-';
}

function deliveryRow(d: AlertDelivery): string[] {
  return [
    String(d.id),
    formatTime(d.createdAt),
    d.channel,
    d.state,
    d.status === 'failed' && d.lastError ? `failed: ${truncate(d.lastError, 40)}` : d.status,
    String(d.attempts),
    truncate(d.title, 60),
  ];
}
