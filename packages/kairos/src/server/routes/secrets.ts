import { SecretRotationSchema } from '@kairos/client';
import type { FastifyInstance } from 'fastify';
import { rotateSecrets } from '../../scheduler/secret-rotation.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';

/**
 * `POST /v1/secrets/rotate` (admin; `kairos secrets rotate`): re-encrypts every stored secret param
 * with this node's first key, in bounded batches of conditional writes (scheduler/secret-rotation.ts).
 */
export function secretRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, keyring } = ctx;
  app.post(
    '/v1/secrets/rotate',
    {
      onRequest: ctx.requireRole('global-admin'),
      schema: {
        operationId: 'rotateSecrets',
        tags: ['secrets'],
        response: answers({ 200: SecretRotationSchema }),
      },
    },
    async (request) => {
      const report = await rotateSecrets(store, keyring);
      request.log.info({ report }, 'secret params rotated');
      return report;
    },
  );
}
