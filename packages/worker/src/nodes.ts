import { KairosApiError, KairosClient, type Transport } from '@kairos/client';
import { nodeTransport } from '@kairos/client/node';
import { errorField, type WorkerLogger } from './logger.ts';

/** Until a node announces its worker lease: the time limit that the default lease (5 s) and heartbeat (1 s) give. */
export const DEFAULT_REQUEST_TIMEOUT_MS = requestTimeoutFor(5000, 1000);
/**
 * The time limit of requests the lease does not hang on (log lines): a large batch on a busy node
 * may take longer than a lease-bound limit, and sending it again would store its lines twice.
 */
export const PATIENT_TIMEOUT_MS = 10_000;

/**
 * The time limit of one request to a node, for a worker whose lease is `leaseMs` and heartbeat
 * `heartbeatMs`: a third of what the lease leaves after one beat. A heartbeat sent one beat after
 * the last one that reached the store can then time out on a node that stopped answering, and one
 * more, on the next node, can time out too, with a beat's worth of backoff left before the lease
 * ends (beat + 3 limits = lease). Other nodes judge the lease by the store's clock: a worker moves
 * to a live node well before they declare it lost. Long polls add their wait on top.
 */
export function requestTimeoutFor(leaseMs: number, heartbeatMs: number): number {
  const room = leaseMs > heartbeatMs ? leaseMs - heartbeatMs : leaseMs;
  return Math.max(50, Math.floor(room / 3));
}

/**
 * The nodes a worker may talk to, one at a time. A connection error or a 5xx moves on to the next
 * URL; the worker stays there until that one fails in turn. Every node shares the same store, so
 * a worker id is valid on all of them.
 */
export class NodePool {
  readonly #urls: readonly string[];
  readonly #token: string | undefined;
  readonly #namespace: string | undefined;
  readonly #transport: Transport = nodeTransport();
  #clients: KairosClient[];
  readonly #patient: KairosClient[];
  #index = 0;
  /** Aborted when the pool moves off the current node: its requests in flight are abandoned. */
  #leaving = new AbortController();
  #timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS;
  #pollTimeoutMs = 4000;
  /** In a streak of failures: logged once at its start and once at its end. */
  #failing = false;

  constructor(
    urls: readonly string[],
    token: string | undefined,
    private readonly logger: WorkerLogger,
    namespace?: string,
  ) {
    this.#urls = urls;
    this.#token = token;
    this.#namespace = namespace;
    this.#clients = this.#connect(this.#timeoutMs);
    this.#patient = this.#connect(PATIENT_TIMEOUT_MS);
  }

  /** The time limit of a request. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /**
   * How long a long poll waits for its answer beyond its wait: what the lease leaves after a beat,
   * shorter than the lease but longer than other requests, since a claim made at the end of the
   * wait on a busy node answers late, and a poll given up on loses what it claimed (given back at
   * the next heartbeat). A poll on a node the worker leaves for another is abandoned at once.
   */
  get pollTimeoutMs(): number {
    return this.#pollTimeoutMs;
  }

  /** Sets the time limit of every request to come from the lease the node announced (see {@link requestTimeoutFor}). */
  useLease(leaseMs: number, heartbeatMs: number): void {
    const timeoutMs = requestTimeoutFor(leaseMs, heartbeatMs);
    this.#pollTimeoutMs = Math.max(timeoutMs, leaseMs > heartbeatMs ? leaseMs - heartbeatMs : timeoutMs);
    if (timeoutMs === this.#timeoutMs) return;
    this.#timeoutMs = timeoutMs;
    this.#clients = this.#connect(timeoutMs);
  }

  /**
   * Runs one request on the current node. On a connection error, switches nodes and rethrows:
   * the caller decides how long to back off. An abort through `signal` is not a node failure.
   * The request's own signal also aborts when another request made the pool leave this node, so
   * that a long poll does not wait out its time limit on a node that stopped answering.
   * `patient` requests (log lines) wait {@link PATIENT_TIMEOUT_MS} instead of the lease-bound limit.
   */
  async call<T>(
    request: (client: KairosClient, signal: AbortSignal) => Promise<T>,
    signal?: AbortSignal,
    patient = false,
  ): Promise<T> {
    const client = (patient ? this.#patient : this.#clients)[this.#index]!;
    const leaving = this.#leaving.signal;
    try {
      const answer = await request(client, signal ? AbortSignal.any([signal, leaving]) : leaving);
      if (this.#failing) {
        this.#failing = false;
        this.logger.info('reconnected to Kairos', { url: client.url });
      }
      return answer;
    } catch (err) {
      if (!signal?.aborted && !leaving.aborted && isConnectionError(err)) this.#failed(client, err);
      throw err;
    }
  }

  #connect(timeoutMs: number): KairosClient[] {
    return this.#urls.map(
      (url) =>
        new KairosClient({
          url,
          token: this.#token,
          timeoutMs,
          transport: this.#transport,
          ...(this.#namespace ? { namespace: this.#namespace } : {}),
        }),
    );
  }

  #failed(client: KairosClient, err: unknown): void {
    // Concurrent calls failing on the same node move on once, not once each.
    const current = this.#clients[this.#index] === client || this.#patient[this.#index] === client;
    if (current && this.#clients.length > 1) {
      this.#index = (this.#index + 1) % this.#clients.length;
      this.#leaving.abort();
      this.#leaving = new AbortController();
    }
    if (this.#failing) return;
    this.#failing = true;
    const next = this.#clients[this.#index]!;
    this.logger.warn('cannot reach Kairos; retrying with backoff', {
      url: client.url,
      ...(next.url === client.url ? {} : { next: next.url }),
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

/** Whether a refusal names the request field `field` (an older node does not know it). */
export function namesField(err: unknown, field: string): boolean {
  if (!(err instanceof KairosApiError)) return false;
  const text = `${err.message} ${JSON.stringify(err.details ?? null)}`;
  return new RegExp(`\\b${field}\\b`).test(text);
}

/** Whether a refusal is a node's closed schema rejecting the request field `field` it does not know. */
export function isUnknownField(err: unknown, field: string): boolean {
  if (!isValidationFailed(err)) return false;
  const details = (err as KairosApiError).details;
  if (!Array.isArray(details)) return false;
  return details.some((d) => {
    const entry = d as { path?: unknown; message?: unknown } | null;
    return entry?.path === `/${field}` && entry.message === 'unknown field';
  });
}
