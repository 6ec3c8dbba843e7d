import { LOG_MESSAGE_MAX_CHARS } from '@kairos/client';

/** Bounds of run logs: what one run may store (how long: the node's `retentionLogs`, docs/retention.md). */
export const RUN_LOG_LIMITS = Object.freeze({
  /** Lines kept per run; later lines are dropped after one marker line. */
  maxLinesPerRun: 100_000,
  /** One line's message, in characters (the worker SDK cuts longer ones). */
  maxMessageChars: LOG_MESSAGE_MAX_CHARS,
  /** One line's structured fields, as JSON bytes; larger fields are replaced by a note. */
  maxFieldsBytes: 8192,
});
