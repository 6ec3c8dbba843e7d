import { NAME_PATTERN } from '../core/job.ts';
import { KairosError } from '../errors.ts';

/**
 * Page cursors. A cursor is what `nextCursor` of the previous page said: a row id (runs, audit,
 * skipped fires) or a job name (jobs). Anything else, an id past what JavaScript counts exactly
 * (and past PostgreSQL's bigint) included, answers INVALID_CURSOR rather than a page.
 */
export function idCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  const id = /^[1-9]\d{0,15}$/.test(cursor) ? Number(cursor) : Number.NaN;
  if (!Number.isSafeInteger(id)) throw invalidCursor();
  return id;
}

/** A job-name cursor (the name of the last job of the previous page). */
export function nameCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  if (!NAME_PATTERN.test(cursor)) throw invalidCursor();
  return cursor;
}

function invalidCursor(): KairosError {
  return new KairosError('INVALID_CURSOR', 'cursor: pass back the nextCursor of the previous page');
}
