import type { FastifyError, FastifyInstance } from 'fastify';
import { KairosError, QuotaExceededError, StoreUnavailableError } from '../errors.ts';

/** Seconds a client should wait before retrying while the store is unavailable. */
const RETRY_AFTER_S = 2;

/** Every error leaves as `{ error: { code, message, details? } }` with a stable code (docs/errors.md). */
export function installErrorHandler(
  app: FastifyInstance,
  /** Told of every QUOTA_EXCEEDED answer (the refusals metric). */
  quotaRefused: (namespace: string, quota: string) => void = () => undefined,
): void {
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(body('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });

  app.setErrorHandler((error: FastifyError | KairosError | Error, request, reply) => {
    if (error instanceof StoreUnavailableError) {
      request.log.warn({ err: error.cause }, error.message);
      return reply
        .status(503)
        .header('retry-after', String(RETRY_AFTER_S))
        .send(body(error.code, error.message));
    }
    if (error instanceof QuotaExceededError) {
      quotaRefused(request.namespace, error.quota);
      if (error.retryAfterS !== undefined) reply.header('retry-after', String(error.retryAfterS));
    }
    if (error instanceof KairosError) {
      return reply.status(error.status).send(body(error.code, error.message, error.details));
    }
    const fastifyError = error as FastifyError;
    if (fastifyError.validation) {
      const details = fastifyError.validation.map((v) => {
        const extra = (v.params as { additionalProperty?: string } | undefined)?.additionalProperty;
        return extra
          ? { path: `${v.instancePath}/${extra}`, message: 'unknown field' }
          : { path: v.instancePath || '/', message: v.message ?? 'invalid' };
      });
      const first = details[0];
      const where = fastifyError.validationContext ?? 'body';
      return reply
        .status(400)
        .send(
          body(
            'VALIDATION_FAILED',
            `${where}${first ? `${first.path}: ${first.message}` : ' is invalid'}`,
            details,
          ),
        );
    }
    if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send(body('PAYLOAD_TOO_LARGE', 'request body too large'));
    }
    if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(415).send(
        body('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json', {
          contentType: request.headers['content-type'] ?? null,
        }),
      );
    }
    if (
      fastifyError.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
      fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
      (error instanceof SyntaxError && fastifyError.statusCode === 400)
    ) {
      return reply.status(400).send(body('INVALID_JSON', `the body is not valid JSON: ${error.message}`));
    }
    if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
      return reply.status(400).send(body('VALIDATION_FAILED', fastifyError.message));
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send(body('INTERNAL', 'internal error; see the node log'));
  });
}

export function body(
  code: string,
  message: string,
  details?: unknown,
): { error: { code: string; message: string; details?: unknown } } {
  return details === undefined ? { error: { code, message } } : { error: { code, message, details } };
}
