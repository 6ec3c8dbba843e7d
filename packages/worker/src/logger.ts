/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/**
 * Where the worker writes its logs. Each method takes a message and optional fields; adapt your
 * logger to this shape (pino: `info: (msg, fields) => pino.info(fields ?? {}, msg)`).
 */
export interface WorkerLogger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const QUIET = new Set(['', '0', 'false', 'no', 'off']);

/**
 * The default logger: JSON lines on stderr, warn and error only, so that the worker stays quiet
 * inside an application; every level when `KAIROS_WORKER_DEBUG` is set.
 */
export function createConsoleLogger(env: NodeJS.ProcessEnv = process.env): WorkerLogger {
  const verbose = !QUIET.has((env.KAIROS_WORKER_DEBUG ?? '').trim().toLowerCase());
  const write = (level: string, message: string, fields?: LogFields) => {
    console.error(toJsonLine({ time: new Date().toISOString(), level, msg: message, ...fields }));
  };
  const quiet = () => {};
  return {
    debug: verbose ? (message, fields) => write('debug', message, fields) : quiet,
    info: verbose ? (message, fields) => write('info', message, fields) : quiet,
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
  };
}

/** The user's logger, made unable to throw into the worker's loops. */
export function guarded(logger: WorkerLogger): WorkerLogger {
  const call = (level: keyof WorkerLogger) => (message: string, fields?: LogFields) => {
    try {
      logger[level](message, fields);
    } catch {
      // A broken logger must not stop the worker.
    }
  };
  return { debug: call('debug'), info: call('info'), warn: call('warn'), error: call('error') };
}

/** A logger with fields merged into every line (a run's id and attempt, for example). */
export function withFields(logger: WorkerLogger, base: LogFields): Omit<WorkerLogger, 'debug'> {
  return {
    info: (message, fields) => logger.info(message, { ...base, ...fields }),
    warn: (message, fields) => logger.warn(message, { ...base, ...fields }),
    error: (message, fields) => logger.error(message, { ...base, ...fields }),
  };
}

/**
 * An error as a log field (Errors serialize to `{}` otherwise), with its causes: a failed fetch
 * says ECONNREFUSED only in its cause.
 */
export function errorField(err: unknown, depth = 0): LogFields | string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const field: LogFields = { name: err.name, message: err.message };
    if (cause !== undefined && depth < 3) field.cause = errorField(cause, depth + 1);
    return field;
  }
  try {
    return String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}

function toJsonLine(record: LogFields): string {
  try {
    return JSON.stringify(record, (_key, value: unknown) => {
      if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
      if (typeof value === 'bigint') return value.toString();
      return value;
    });
  } catch {
    return JSON.stringify({
      time: record.time,
      level: record.level,
      msg: record.msg,
      fields: '[unserializable]',
    });
  }
}
