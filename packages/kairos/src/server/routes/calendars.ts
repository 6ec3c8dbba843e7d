import {
  CalendarBody,
  CalendarListSchema,
  CalendarSchema,
  type CalendarSpec,
  CalendarSpecSchema,
  NameParam,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { compileCalendar, describeCalendar } from '../../core/calendar.ts';
import { KairosError } from '../../errors.ts';
import { answers, NoContent } from '../answers.ts';
import type { NodeContext } from '../context.ts';

type NameParams = Static<typeof NameParam>;

/** `/v1/calendars`: named sets of excluded dates and times that jobs attach by name. */
export function calendarRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const read = { onRequest: ctx.requireRole('viewer') };
  const write = { onRequest: ctx.requireRole('operator') };
  const notFound = (name: string) =>
    new KairosError('CALENDAR_NOT_FOUND', `no calendar named ${JSON.stringify(name)}`);

  const listCalendars = {
    operationId: 'listCalendars',
    tags: ['calendars'],
    response: answers({ 200: CalendarListSchema }),
  };
  app.get('/v1/calendars', { ...read, schema: listCalendars }, async (request) => ({
    items: (await store.listCalendars(request.namespace)).map(describeCalendar),
  }));

  app.post<{ Body: CalendarSpec }>(
    '/v1/calendars',
    {
      ...write,
      schema: {
        operationId: 'createCalendar',
        tags: ['calendars'],
        body: CalendarSpecSchema,
        response: answers({ 201: CalendarSchema }),
      },
    },
    async (request, reply) => {
      const calendar = compileCalendar(request.body);
      if ((await store.getCalendars([calendar.name])).length > 0) {
        throw new KairosError(
          'CALENDAR_NAME_TAKEN',
          `a calendar named ${JSON.stringify(calendar.name)} exists`,
        );
      }
      const saved = await store.putCalendar(calendar, clock.now(), request.namespace);
      reply.status(201);
      return describeCalendar(saved.calendar);
    },
  );

  app.get<{ Params: NameParams }>(
    '/v1/calendars/:name',
    {
      ...read,
      schema: {
        operationId: 'getCalendar',
        tags: ['calendars'],
        params: NameParam,
        response: answers({ 200: CalendarSchema }),
      },
    },
    async (request) => {
      const [calendar] = await store.getCalendars([request.params.name]);
      if (!calendar) throw notFound(request.params.name);
      return describeCalendar(calendar);
    },
  );

  app.put<{ Params: NameParams; Body: Omit<CalendarSpec, 'name'> & { name?: string } }>(
    '/v1/calendars/:name',
    {
      ...write,
      schema: {
        operationId: 'putCalendar',
        tags: ['calendars'],
        params: NameParam,
        body: CalendarBody,
        response: answers({ 200: CalendarSchema, 201: CalendarSchema }),
      },
    },
    async (request, reply) => {
      const calendar = compileCalendar({ ...request.body, name: request.params.name });
      const saved = await store.putCalendar(calendar, clock.now(), request.namespace);
      if (saved.created) reply.status(201);
      return describeCalendar(saved.calendar);
    },
  );

  app.delete<{ Params: NameParams }>(
    '/v1/calendars/:name',
    {
      ...write,
      schema: {
        operationId: 'deleteCalendar',
        tags: ['calendars'],
        params: NameParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      if (!(await store.deleteCalendar(request.params.name))) throw notFound(request.params.name);
      reply.status(204);
    },
  );
}
