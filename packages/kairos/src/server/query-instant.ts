import { parseInstant } from '../core/trigger.ts';
import { KairosError } from '../errors.ts';

/** An optional RFC 3339 instant of a query string, as epoch ms; VALIDATION_FAILED naming the field otherwise. */
export function queryInstant(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseInstant(value, field);
  } catch {
    throw new KairosError(
      'VALIDATION_FAILED',
      `${field}: expected an RFC 3339 instant with an offset, such as 2030-01-01T09:00:00Z`,
      { path: `/${field}` },
    );
  }
}
