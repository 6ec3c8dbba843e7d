import { createRequire } from 'node:module';
import { isatty } from 'node:tty';
import pino, { type Logger, type LoggerOptions } from 'pino';

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

/** Fields that never reach a log line, whoever logs them. */
const REDACT = [
  'token',
  '*.token',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'adminToken',
  'workerToken',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** Options of {@link createKairosLogger}. */
export interface KairosLoggerOptions {
  /** pino level: `debug`, `info`, `warn`, … */
  level: string;
  /** Where the lines go: file descriptor 1 (stdout, the node) or 2 (stderr, a worker). */
  fd: 1 | 2;
}

/**
 * The one log format of Kairos, shared by node and worker: pino JSON lines
 * (`{"level":"info","time":"2026-…Z","pid":1234,"msg":"…",…}`, level names and ISO times), tokens and
 * passwords redacted; readable lines through pino-pretty only when the output is a terminal and
 * pino-pretty is installed.
 */
export function createKairosLogger({ level, fd }: KairosLoggerOptions): Logger {
  const options: LoggerOptions = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT, censor: '[redacted]' },
    // Errors get pino's serializer; an error already made a field (`errorField`) stays as it is.
    serializers: { err: (err: unknown) => (err instanceof Error ? pino.stdSerializers.err(err) : err) },
  };
  const pretty = isatty(fd) ? resolvePretty() : undefined;
  if (pretty) {
    return pino({
      ...options,
      transport: {
        target: pretty,
        options: { destination: fd, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' },
      },
    });
  }
  return pino(options, pino.destination({ fd, sync: true }));
}

/**
 * The default logger of a worker: the Kairos format on stderr, warn and error only, so that the
 * worker stays quiet inside an application; every level when `KAIROS_WORKER_DEBUG` is set.
 */
export function createConsoleLogger(env: NodeJS.ProcessEnv = process.env): WorkerLogger {
  const verbose = !QUIET.has((env.KAIROS_WORKER_DEBUG ?? '').trim().toLowerCase());
  return fromPino(createKairosLogger({ level: verbose ? 'debug' : 'warn', fd: 2 }));
}

/** A pino logger in the worker's shape (message first, fields second). */
export function fromPino(logger: Logger): WorkerLogger {
  return {
    debug: (message, fields) => logger.debug(fields ?? {}, message),
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}

function resolvePretty(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('pino-pretty');
  } catch {
    return undefined;
  }
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
