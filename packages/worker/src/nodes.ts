import { KairosApiError, KairosClient } from '@kairos/client';
import { nodeTransport } from '@kairos/client/node';
import { errorField, type WorkerLogger } from './logger.ts';

/**
 * Per-request time limit. Shorter than the client's default so that a node that accepts the
 * connection but never answers costs at most this before the worker tries the next one
 * (long polls add their wait on top).
 */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The nodes a worker may talk to, one at a time. A connection error or a 5xx moves on to the next
 * URL; the worker stays there until that one fails in turn. Every node shares the same store, so
 * a worker id is valid on all of them.
 */
export class NodePool {
  readonly #clients: KairosClient[];
  #index = 0;
  /** In a streak of failures: logged once at its start and once at its end. */
  #failing = false;

  constructor(
    urls: readonly string[],
    token: string | undefined,
    private readonly logger: WorkerLogger,
  ) {
    const transport = nodeTransport();
    this.#clients = urls.map(
      (url) => new KairosClient({ url, token, timeoutMs: REQUEST_TIMEOUT_MS, transport }),
    );
  }

  /**
   * Runs one request on the current node. On a connection error, switches nodes and rethrows:
   * the caller decides how long to back off. An abort through `signal` is not a node failure.
   */
  async call<T>(request: (client: KairosClient) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const client = this.#clients[this.#index]!;
    try {
      const answer = await request(client);
      if (this.#failing) {
        this.#failing = false;
        this.logger.info('reconnected to Kairos', { url: client.url });
      }
      return answer;
    } catch (err) {
      if (!signal?.aborted && isConnectionError(err)) this.#failed(client, err);
      throw err;
    }
  }

  #failed(client: KairosClient, err: unknown): void {
    // Concurrent calls failing on the same node move on once, not once each.
    if (this.#clients[this.#index] === client) this.#index = (this.#index + 1) % this.#clients.length;
    if (this.#failing) return;
    this.#failing = true;
    const next = this.#clients[this.#index]!;
    this.logger.warn('cannot reach Kairos; retrying with backoff', {
      url: client.url,
      ...(next === client ? {} : { next: next.url }),
      err: errorField(err),
    });
  }
}

/** A failure worth trying another node for: no answer at all (network, time limit) or a 5xx. */
export function isConnectionError(err: unknown): boolean {
  return err instanceof KairosApiError ? err.status >= 500 : true;
}

/** The node does not know this worker (never did, forgot it, or declared it lost): register again. */
export function isWorkerNotFound(err: unknown): boolean {
  return err instanceof KairosApiError && err.code === 'WORKER_NOT_FOUND';
}

/** The node refused the request's shape: a field it does not know (an older node), for one. */
export function isValidationFailed(err: unknown): boolean {
  return err instanceof KairosApiError && err.code === 'VALIDATION_FAILED';
}
