import type { ServiceImpl } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "@berth/kit";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { consumerProblem, requireFields } from "./request-checks.js";
import type { SchedulerServiceDeps } from "./service-deps.js";

type EndpointHandlers = Pick<ServiceImpl<typeof SchedulerService>, "watchEndpoints" | "ackEndpoints" | "reportDrained" | "reportTraffic">;

function requireConsumer(consumer: string): void {
  requireFields({ ids: { consumer } });
  const problem = consumerProblem(consumer);
  if (problem !== undefined) throw invalidArgument("consumer", problem);
}

/** The handlers of the endpoint protocol with the routers: the feed, its acknowledgements, drains. */
export function createEndpointHandlers(deps: SchedulerServiceDeps): EndpointHandlers {
  const { endpoints, traffic } = deps;
  return {
    watchEndpoints(request, ctx) {
      requireConsumer(request.consumer);
      return endpoints.watch(request.consumer, ctx.signal);
    },

    async ackEndpoints(request) {
      requireConsumer(request.consumer);
      if (request.generation > BigInt(endpoints.generation)) {
        throw invalidArgument("generation", `generation ${request.generation} was never published (the latest is ${endpoints.generation})`);
      }
      await endpoints.ack(request.consumer, Number(request.generation));
      return {};
    },

    async reportDrained(request) {
      requireConsumer(request.consumer);
      endpoints.reportDrained(request.consumer, request.replicas);
      return {};
    },

    async reportTraffic(request) {
      requireConsumer(request.consumer);
      if (!request.periodStart) throw invalidArgument("period_start", "is required");
      if (!request.periodEnd) throw invalidArgument("period_end", "is required");
      const periodStart = timestampDate(request.periodStart);
      const periodEnd = timestampDate(request.periodEnd);
      if (periodEnd < periodStart) throw invalidArgument("period_end", "is before period_start");
      const counts = request.counts.map((count, index) => {
        const figures = count.figures;
        if (count.app === "") throw invalidArgument(`counts[${index}].app`, "is required");
        if (!figures || figures.processType === "") throw invalidArgument(`counts[${index}].figures.process_type`, "is required");
        if (figures.failed > figures.requests || figures.appErrors > figures.requests) {
          throw invalidArgument(`counts[${index}].figures`, "failed and app_errors are part of requests and cannot exceed it");
        }
        return {
          app: count.app,
          processType: figures.processType,
          releaseVersion: figures.releaseVersion,
          requests: Number(figures.requests),
          failed: Number(figures.failed),
          appErrors: Number(figures.appErrors),
        };
      });
      await traffic.record({ consumer: request.consumer, periodStart, periodEnd, counts });
      return {};
    },
  };
}
