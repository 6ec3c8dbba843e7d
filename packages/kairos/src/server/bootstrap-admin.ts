import type { Logger } from 'pino';
import type { Clock } from '../scheduler/clock.ts';
import { GLOBAL_NAMESPACE } from '../store/namespaces.ts';
import type { Store } from '../store/store.ts';
import { hashPassword } from './passwords.ts';

/**
 * Creates the first console admin from the config (`KAIROS_ADMIN_USER` / `KAIROS_ADMIN_PASSWORD`)
 * when no admin user exists yet. Never changes an existing user: the variables are a first-start
 * bootstrap, not a way to reset a password. Answers whether it created the user.
 */
export async function bootstrapAdmin(
  store: Store,
  clock: Clock,
  logger: Logger,
  admin: { name: string; password: string },
): Promise<boolean> {
  if ((await store.listUsers()).some((user) => user.role === 'admin')) return false;
  if (await store.getUser(admin.name)) return false;
  if (admin.password.length < 8) {
    logger.warn('KAIROS_ADMIN_PASSWORD is shorter than 8 characters: no admin user created');
    return false;
  }
  const now = clock.now();
  try {
    await store.createUser(
      { name: admin.name, role: 'admin', passwordHash: await hashPassword(admin.password) },
      now,
      {
        // Users are in no namespace: audited with them, as POST /v1/users is.
        namespace: GLOBAL_NAMESPACE,
        at: now,
        actor: 'config',
        action: 'users.create',
        target: `users:${admin.name}`,
        details: { role: 'admin' },
      },
    );
  } catch (error) {
    // Another node of the cluster created it first.
    if ((error as { code?: string }).code === 'USER_NAME_TAKEN') return false;
    throw error;
  }
  logger.info({ user: admin.name }, 'created the first admin user');
  return true;
}
