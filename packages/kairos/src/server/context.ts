import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { KairosConfig } from '../config.ts';
import type { AlertSender } from '../scheduler/alert-channels.ts';
import type { AttemptEnder } from '../scheduler/attempts.ts';
import type { Clock } from '../scheduler/clock.ts';
import type { Dispatcher } from '../scheduler/dispatcher.ts';
import type { JobService } from '../scheduler/job-service.ts';
import type { Pruner } from '../scheduler/pruner.ts';
import type { SecretKeyring } from '../scheduler/secret-keyring.ts';
import type { Store } from '../store/store.ts';
import type { Role } from './auth.ts';
import type { Metrics } from './metrics.ts';
import type { QuotaGuard } from './quota-guard.ts';

/** What the HTTP layer of a node works with. */
export interface NodeContext {
  config: KairosConfig;
  store: Store;
  clock: Clock;
  logger: Logger;
  jobs: JobService;
  /** The keys of secret params: the poll decrypts them for the worker that claims a run. */
  keyring: SecretKeyring;
  ender: AttemptEnder;
  dispatcher: Dispatcher;
  metrics: Metrics;
  /** Sends alert messages (the channels' "send test" action). */
  alertSender: AlertSender;
  /** This node's pruner, for what it did lately (Settings → Retention). */
  pruner?: Pick<Pruner, 'state'>;
  requireRole(role: Role): (request: FastifyRequest) => Promise<void>;
  /** Forgets that a namespace existed (after deleting it), so that this node answers 404 at once. */
  forgetNamespace?(name: string): void;
  /** The quotas of namespaces and the per-node request buckets (docs/tenancy.md#quotas). */
  quotas: QuotaGuard;
}
