import type { RegisterRequest } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { HANDLER_PATTERN, NAME_PATTERN } from './job.ts';

/** The most labels a worker may carry. */
export const MAX_WORKER_LABELS = 64;
/** Label keys: like a handler name, at most 64 characters. */
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;
/** Free text a worker sends (its name, host, version, label values): one line, no control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Checks what a worker registers with by the rules jobs follow: its group is a job group name, each
 * handler a handler name a job could name; labels are few, with handler-like keys and one-line
 * values. Throws VALIDATION_FAILED naming the field; nothing is stored before it passes.
 */
export function checkRegistration(request: RegisterRequest): void {
  if (!NAME_PATTERN.test(request.group)) {
    throw invalid('group', 'letters, digits and ._:-, starting with a letter or digit');
  }
  request.handlers.forEach((handler, i) => {
    if (!HANDLER_PATTERN.test(handler)) {
      throw invalid(`handlers/${i}`, 'letters, digits and ._:/-, starting with a letter or digit');
    }
  });
  const labels = Object.entries(request.labels ?? {});
  if (labels.length > MAX_WORKER_LABELS) throw invalid('labels', `at most ${MAX_WORKER_LABELS} labels`);
  for (const [key, value] of labels) {
    if (!LABEL_KEY.test(key)) {
      throw invalid(`labels/${key}`, 'a key of letters, digits and ._:/-, starting with a letter or digit');
    }
    if (CONTROL.test(value)) throw invalid(`labels/${key}`, 'a one-line value without control characters');
  }
  for (const field of ['name', 'host', 'version'] as const) {
    const value = request[field];
    if (value !== undefined && CONTROL.test(value)) {
      throw invalid(field, 'one line without control characters');
    }
  }
}

function invalid(path: string, expected: string): KairosError {
  return new KairosError('VALIDATION_FAILED', `body/${path}: expected ${expected}`, [
    { path: `/${path}`, message: `expected ${expected}` },
  ]);
}
