import { LOG_MESSAGE_MAX_CHARS } from '@kairos/client';

/** Bounds of run logs: what one run may store, and for how long. */
export const RUN_LOG_LIMITS = Object.freeze({
  /** Lines kept per run; later lines are dropped after one marker line. */
  maxLinesPerRun: 100_000,
  /** One line's message, in characters (the worker SDK cuts longer ones). */
  maxMessageChars: LOG_MESSAGE_MAX_CHARS,
  /** One line's structured fields, as JSON bytes; larger fields are replaced by a note. */
  maxFieldsBytes: 8192,
  /** Lines are deleted this long after they were stored. */
  retentionMs: 7 * 86_400_000,
});
