/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** Severity, in increasing order. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A JSON-lines logger: one object per line on stderr, so logs stay machine-readable. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** Options of createLogger. */
export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
}

/** Creates the logger of one service. */
export function createLogger(service: string, options: LoggerOptions = {}): Logger {
  const threshold = LEVELS[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const make = (bound: LogFields): Logger => {
    const emit = (level: LogLevel, message: string, fields?: LogFields) => {
      if (LEVELS[level] < threshold) return;
      write(JSON.stringify({ time: new Date().toISOString(), level, service, message, ...bound, ...serializable(fields) }));
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      child: (fields) => make({ ...bound, ...fields }),
    };
  };
  return make({});
}

// Error objects stringify to {} in JSON; keep their message and stack.
function serializable(fields: LogFields | undefined): LogFields | undefined {
  if (!fields) return fields;
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? { message: value.message, name: value.name, stack: value.stack } : value;
  }
  return out;
}

/** A logger that drops everything, for tests that do not read logs. */
export const silentLogger: Logger = createLogger("silent", { write: () => {} });
