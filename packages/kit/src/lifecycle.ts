import { ConfigError } from "./config.js";
import type { Logger } from "./logger.js";

/** Anything that can be closed at shutdown (servers, stores, loops). */
export interface Closable {
  close(graceMs?: number): Promise<void>;
}

/**
 * Keeps the process up until SIGTERM or SIGINT, then closes `parts` in
 * reverse start order (servers first, stores last) and exits.
 */
export function runUntilSignal(logger: Logger, parts: Closable[], graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const stop = async (signal: string) => {
      logger.info("shutting down", { signal });
      for (const part of [...parts].reverse()) {
        try {
          await part.close(graceMs);
        } catch (error) {
          logger.error("error while closing", { error });
        }
      }
      resolve();
      process.exit(0);
    };
    // Ctrl-C under `npm start` delivers SIGINT twice (from the terminal, and relayed by tsx):
    // a repeat must not kill the process half-way through closing its stores.
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      void stop(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/**
 * Reads a service's configuration, or exits with status 2 and one line naming
 * the variable at fault: a misconfigured service must not start half-way.
 */
export function readConfigOrExit<T>(service: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    exitForConfigError(service, error);
  }
}

/** Reports a ConfigError as readConfigOrExit does and exits with status 2; rethrows any other error. */
export function exitForConfigError(service: string, error: unknown): never {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`berth ${service}: ${error.message}\n`);
  process.exit(2);
}
