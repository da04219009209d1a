import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import type { Logger } from "@berth/kit";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { TrafficCountSchema } from "@berth/proto/scheduler/v1/scheduler";
import { Counter } from "prom-client";
import type { Registry } from "prom-client";
import { mergePeriods } from "./proxy/traffic-counter.js";
import type { TrafficCounter, TrafficPeriod } from "./proxy/traffic-counter.js";

/** Options of startTrafficReporter. */
export interface TrafficReporterOptions {
  scheduler: Pick<Client<typeof SchedulerService>, "reportTraffic">;
  consumer: string;
  counter: TrafficCounter;
  intervalMs: number;
  /** Where the per app and process counters are exposed (the router's /metrics). */
  registry: Registry;
  logger: Logger;
  callTimeoutMs?: number;
}

/** The running reporter. */
export interface TrafficReporter {
  /** Sends what was counted since the last report and stops. */
  close(): Promise<void>;
}

/**
 * Reports the proxy's counts to the scheduler at a steady pace, empty periods
 * too: the scheduler knows a rollout's figures are complete once every router
 * has reported past its end. A report that fails is merged into the next one.
 */
export function startTrafficReporter(options: TrafficReporterOptions): TrafficReporter {
  const labelNames = ["app", "process_type"] as const;
  const requests = new Counter({
    name: "berth_router_requests_total",
    help: "Requests the router answered for an app's process type, failed ones and the app's own 5xx included.",
    labelNames,
    registers: [options.registry],
  });
  const failed = new Counter({
    name: "berth_router_requests_failed_total",
    help: "Requests the platform failed: replicas refused or reset after retries, the router's own 502 and 503.",
    labelNames,
    registers: [options.registry],
  });
  const appErrors = new Counter({
    name: "berth_router_app_errors_total",
    help: "5xx answers sent by the app itself.",
    labelNames,
    registers: [options.registry],
  });
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  let closed = false;
  // A period the scheduler did not get: sent again with the next one.
  let unreported: TrafficPeriod | undefined;

  function observe(period: TrafficPeriod): void {
    for (const tally of period.tallies) {
      const labels = { app: tally.app, process_type: tally.processType };
      requests.inc(labels, tally.requests);
      if (tally.failed > 0) failed.inc(labels, tally.failed);
      if (tally.appErrors > 0) appErrors.inc(labels, tally.appErrors);
    }
  }

  async function report(): Promise<void> {
    const fresh = options.counter.take();
    observe(fresh);
    const period = unreported ? mergePeriods(unreported, fresh) : fresh;
    unreported = undefined;
    try {
      await options.scheduler.reportTraffic(
        {
          consumer: options.consumer,
          periodStart: timestampFromDate(period.start),
          periodEnd: timestampFromDate(period.end),
          counts: period.tallies.map((tally) =>
            create(TrafficCountSchema, {
              app: tally.app,
              figures: {
                processType: tally.processType,
                releaseVersion: tally.release,
                requests: BigInt(tally.requests),
                failed: BigInt(tally.failed),
                appErrors: BigInt(tally.appErrors),
              },
            }),
          ),
        },
        { timeoutMs: options.callTimeoutMs ?? 5000 },
      );
    } catch (error) {
      unreported = period;
      options.logger.warn("ReportTraffic failed: the counts go with the next report", { error });
    }
  }

  function schedule(): void {
    timer = setTimeout(() => {
      inFlight = report().finally(() => {
        if (!closed) schedule();
      });
    }, options.intervalMs);
    timer.unref();
  }
  schedule();

  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      await inFlight;
      await report();
    },
  };
}
