import {
  AlertChannelBody,
  AlertChannelListSchema,
  AlertChannelSchema,
  type AlertChannelSpec,
  AlertChannelSpecSchema,
  type AlertDelivery,
  type AlertDeliveryFilter,
  AlertDeliveryListSchema,
  AlertDeliveryQuery,
  AlertDeliverySchema,
  AlertOpenListSchema,
  AlertRuleBody,
  AlertRuleListSchema,
  AlertRuleSchema,
  type AlertRuleSpec,
  AlertRuleSpecSchema,
  type AlertSilence,
  AlertSilenceListSchema,
  AlertSilenceSchema,
  type AlertSilenceSpec,
  AlertSilenceSpecSchema,
  NameParam,
  SilenceParam,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { compileAlertRule, describeAlertRule } from '../../core/alert-rule.ts';
import { KairosError } from '../../errors.ts';
import { sendTestAlert } from '../../scheduler/alert-service.ts';
import type { DeliveryRecord, SilenceRecord } from '../../store/alerts.ts';
import { compileChannel, describeChannel } from '../alert-channel-spec.ts';
import { answers, NoContent } from '../answers.ts';
import type { NodeContext } from '../context.ts';
import { queryInstant } from '../query-instant.ts';

type NameParams = Static<typeof NameParam>;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * `/v1/alert-rules`, `/v1/alert-channels`, `/v1/alert-silences`, `/v1/alert-deliveries`,
 * `/v1/alerts`: what alerts, where it goes, when it is quiet, and what was sent (docs/alerts.md).
 * Rules and silences need an operator; channels carry secrets and reach out of the cluster, so
 * changing them needs an admin. No answer carries a channel's URL past its origin or a secret.
 */
export function alertRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const read = { onRequest: ctx.requireRole('viewer') };
  const operate = { onRequest: ctx.requireRole('operator') };
  const administer = { onRequest: ctx.requireRole('admin') };
  const ruleNotFound = (name: string) =>
    new KairosError('ALERT_RULE_NOT_FOUND', `no alert rule named ${JSON.stringify(name)}`);
  const channelNotFound = (name: string) =>
    new KairosError('CHANNEL_NOT_FOUND', `no alert channel named ${JSON.stringify(name)}`);
  /**
   * A rule scoped to a job must name a job of its namespace: one that names no job could never
   * fire, a silent gap for whoever is on call. A group scope is free-form (a group exists as soon as
   * a job or worker names it) and is not checked.
   */
  const compileRule = async (spec: AlertRuleSpec, namespace: string) => {
    const rule = compileAlertRule(spec);
    if (rule.job !== null && (await store.getJob(rule.job))?.namespace !== namespace) {
      throw new KairosError(
        'JOB_NOT_FOUND',
        `job: no job named ${JSON.stringify(rule.job)} in namespace ${JSON.stringify(namespace)}; a rule scoped to it could never fire (create the job first)`,
        { field: 'job' },
      );
    }
    return rule;
  };

  // Rules --------------------------------------------------------------------

  app.get(
    '/v1/alert-rules',
    {
      ...read,
      schema: {
        operationId: 'listAlertRules',
        tags: ['alerts'],
        response: answers({ 200: AlertRuleListSchema }),
      },
    },
    async (request) => ({ items: (await store.alerts.listRules(request.namespace)).map(describeAlertRule) }),
  );

  app.post<{ Body: AlertRuleSpec }>(
    '/v1/alert-rules',
    {
      ...operate,
      schema: {
        operationId: 'createAlertRule',
        tags: ['alerts'],
        body: AlertRuleSpecSchema,
        response: answers({ 201: AlertRuleSchema }),
      },
    },
    async (request, reply) => {
      const saved = await store.alerts.putRule(
        await compileRule(request.body, request.namespace),
        clock.now(),
        true,
        request.namespace,
      );
      reply.status(201);
      return describeAlertRule(saved.rule);
    },
  );

  app.get<{ Params: NameParams }>(
    '/v1/alert-rules/:name',
    {
      ...read,
      schema: {
        operationId: 'getAlertRule',
        tags: ['alerts'],
        params: NameParam,
        response: answers({ 200: AlertRuleSchema }),
      },
    },
    async (request) => {
      const rule = await store.alerts.getRule(request.params.name);
      if (!rule) throw ruleNotFound(request.params.name);
      return describeAlertRule(rule);
    },
  );

  app.put<{ Params: NameParams; Body: Omit<AlertRuleSpec, 'name'> & { name?: string } }>(
    '/v1/alert-rules/:name',
    {
      ...operate,
      schema: {
        operationId: 'putAlertRule',
        tags: ['alerts'],
        params: NameParam,
        body: AlertRuleBody,
        response: answers({ 200: AlertRuleSchema, 201: AlertRuleSchema }),
      },
    },
    async (request, reply) => {
      const rule = await compileRule({ ...request.body, name: request.params.name }, request.namespace);
      const saved = await store.alerts.putRule(rule, clock.now(), false, request.namespace);
      if (saved.created) reply.status(201);
      return describeAlertRule(saved.rule);
    },
  );

  app.delete<{ Params: NameParams }>(
    '/v1/alert-rules/:name',
    {
      ...operate,
      schema: {
        operationId: 'deleteAlertRule',
        tags: ['alerts'],
        params: NameParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      if (!(await store.alerts.deleteRule(request.params.name))) throw ruleNotFound(request.params.name);
      reply.status(204);
    },
  );

  // Channels -----------------------------------------------------------------

  app.get(
    '/v1/alert-channels',
    {
      ...read,
      schema: {
        operationId: 'listAlertChannels',
        tags: ['alerts'],
        response: answers({ 200: AlertChannelListSchema }),
      },
    },
    async (request) => ({ items: (await store.alerts.listChannels(request.namespace)).map(describeChannel) }),
  );

  app.post<{ Body: AlertChannelSpec }>(
    '/v1/alert-channels',
    {
      ...administer,
      schema: {
        operationId: 'createAlertChannel',
        tags: ['alerts'],
        body: AlertChannelSpecSchema,
        response: answers({ 201: AlertChannelSchema }),
      },
    },
    async (request, reply) => {
      const saved = await store.alerts.putChannel(
        compileChannel(request.body, null),
        clock.now(),
        true,
        request.namespace,
      );
      reply.status(201);
      return describeChannel(saved.channel);
    },
  );

  app.get<{ Params: NameParams }>(
    '/v1/alert-channels/:name',
    {
      ...read,
      schema: {
        operationId: 'getAlertChannel',
        tags: ['alerts'],
        params: NameParam,
        response: answers({ 200: AlertChannelSchema }),
      },
    },
    async (request) => {
      const channel = await store.alerts.getChannel(request.params.name);
      if (!channel) throw channelNotFound(request.params.name);
      return describeChannel(channel);
    },
  );

  app.put<{ Params: NameParams; Body: Omit<AlertChannelSpec, 'name'> & { name?: string } }>(
    '/v1/alert-channels/:name',
    {
      ...administer,
      schema: {
        operationId: 'putAlertChannel',
        tags: ['alerts'],
        params: NameParam,
        body: AlertChannelBody,
        response: answers({ 200: AlertChannelSchema, 201: AlertChannelSchema }),
      },
    },
    async (request, reply) => {
      const previous = await store.alerts.getChannel(request.params.name);
      const channel = compileChannel({ ...request.body, name: request.params.name }, previous);
      const saved = await store.alerts.putChannel(channel, clock.now(), false, request.namespace);
      if (saved.created) reply.status(201);
      return describeChannel(saved.channel);
    },
  );

  app.delete<{ Params: NameParams }>(
    '/v1/alert-channels/:name',
    {
      ...administer,
      schema: {
        operationId: 'deleteAlertChannel',
        tags: ['alerts'],
        params: NameParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      if (!(await store.alerts.deleteChannel(request.params.name)))
        throw channelNotFound(request.params.name);
      reply.status(204);
    },
  );

  app.post<{ Params: NameParams }>(
    '/v1/alert-channels/:name/test',
    {
      ...operate,
      schema: {
        operationId: 'testAlertChannel',
        tags: ['alerts'],
        params: NameParam,
        response: answers({ 200: AlertDeliverySchema }),
      },
    },
    async (request) => {
      const delivery = await sendTestAlert(
        store,
        clock,
        ctx.alertSender,
        request.params.name,
        request.principal?.actor ?? 'anonymous',
      );
      if (!delivery) throw channelNotFound(request.params.name);
      return deliveryView(delivery);
    },
  );

  // Silences -----------------------------------------------------------------

  app.get(
    '/v1/alert-silences',
    {
      ...read,
      schema: {
        operationId: 'listAlertSilences',
        tags: ['alerts'],
        response: answers({ 200: AlertSilenceListSchema }),
      },
    },
    async (request) => ({
      items: (await store.alerts.listSilences(clock.now(), request.namespace)).map(silenceView),
    }),
  );

  app.post<{ Body: AlertSilenceSpec }>(
    '/v1/alert-silences',
    {
      ...operate,
      schema: {
        operationId: 'createAlertSilence',
        tags: ['alerts'],
        body: AlertSilenceSpecSchema,
        response: answers({ 201: AlertSilenceSchema }),
      },
    },
    async (request, reply) => {
      const now = clock.now();
      const startsAt = queryInstant(request.body.startsAt, 'startsAt') ?? now;
      const endsAt = queryInstant(request.body.endsAt, 'endsAt')!;
      if (endsAt <= startsAt || endsAt <= now)
        throw new KairosError(
          'INVALID_TIME_RANGE',
          'endsAt: a silence must end after it starts and in the future',
          {
            field: 'endsAt',
          },
        );
      const silence = await store.alerts.createSilence({
        namespace: request.namespace,
        rule: request.body.rule ?? null,
        startsAt,
        endsAt,
        comment: request.body.comment ?? '',
        createdBy: request.principal?.actor ?? 'anonymous',
        createdAt: now,
      });
      reply.status(201);
      return silenceView(silence);
    },
  );

  app.delete<{ Params: Static<typeof SilenceParam> }>(
    '/v1/alert-silences/:id',
    {
      ...operate,
      schema: {
        operationId: 'deleteAlertSilence',
        tags: ['alerts'],
        params: SilenceParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      if (!(await store.alerts.deleteSilence(request.params.id, request.namespace)))
        throw new KairosError('SILENCE_NOT_FOUND', `no silence ${request.params.id}`);
      reply.status(204);
    },
  );

  // History and what fires now -------------------------------------------------

  app.get<{ Querystring: AlertDeliveryFilter }>(
    '/v1/alert-deliveries',
    {
      ...read,
      schema: {
        operationId: 'listAlertDeliveries',
        tags: ['alerts'],
        querystring: AlertDeliveryQuery,
        response: answers({ 200: AlertDeliveryListSchema }),
      },
    },
    async (request) => {
      const q = request.query;
      const items = await store.alerts.listDeliveries({
        namespace: request.namespace,
        channel: q.channel,
        rule: q.rule,
        status: q.status,
        before: q.before,
        limit: q.limit ?? 50,
      });
      return { items: items.map(deliveryView) };
    },
  );

  app.get(
    '/v1/alerts',
    {
      ...read,
      schema: {
        operationId: 'listOpenAlerts',
        tags: ['alerts'],
        response: answers({ 200: AlertOpenListSchema }),
      },
    },
    async (request) => {
      const names = new Map((await store.alerts.listRules(request.namespace)).map((r) => [r.id, r.name]));
      const firing = await store.alerts.firingAlerts(request.namespace);
      return {
        items: firing
          .filter((s) => names.has(s.ruleId))
          .sort((a, b) => b.firedAt - a.firedAt)
          .map((s) => ({
            rule: names.get(s.ruleId)!,
            subject: s.subject,
            firedAt: iso(s.firedAt)!,
            notifiedAt: iso(s.notifiedAt),
            count: s.count,
          })),
      };
    },
  );
}

function deliveryView(d: DeliveryRecord): AlertDelivery {
  return {
    id: d.id,
    eventId: d.eventId,
    rule: d.rule,
    channel: d.channel,
    subject: d.subject,
    state: d.state,
    title: d.title,
    text: d.text,
    details: d.details,
    status: d.status,
    attempts: d.attempts,
    lastError: d.lastError,
    createdAt: iso(d.createdAt)!,
    sentAt: iso(d.sentAt),
    nextAttemptAt: iso(d.nextAttemptAt),
  };
}

function silenceView(s: SilenceRecord): AlertSilence {
  return {
    id: s.id,
    rule: s.rule,
    startsAt: iso(s.startsAt)!,
    endsAt: iso(s.endsAt)!,
    comment: s.comment,
    createdBy: s.createdBy,
    createdAt: iso(s.createdAt)!,
  };
}
