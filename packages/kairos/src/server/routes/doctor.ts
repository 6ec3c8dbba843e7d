import { DoctorReportSchema } from '@kairos/client';
import type { FastifyInstance } from 'fastify';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';
import { runDoctor } from '../doctor.ts';

/** `GET /v1/doctor`: the checks `kairos doctor` prints, run by the node asked (server/doctor.ts). */
export function doctorRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/v1/doctor',
    {
      onRequest: ctx.requireRole('global-admin'),
      schema: { operationId: 'doctor', tags: ['cluster'], response: answers({ 200: DoctorReportSchema }) },
    },
    async () => runDoctor(ctx.config, ctx.store),
  );
}
