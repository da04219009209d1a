import type { ServiceImpl } from "@connectrpc/connect";
import { invalidArgument } from "@berth/kit";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { consumerProblem, requireFields } from "./request-checks.js";
import type { SchedulerServiceDeps } from "./service-deps.js";

type EndpointHandlers = Pick<ServiceImpl<typeof SchedulerService>, "watchEndpoints" | "ackEndpoints" | "reportDrained">;

function requireConsumer(consumer: string): void {
  requireFields({ ids: { consumer } });
  const problem = consumerProblem(consumer);
  if (problem !== undefined) throw invalidArgument("consumer", problem);
}

/** The handlers of the endpoint protocol with the routers: the feed, its acknowledgements, drains. */
export function createEndpointHandlers(deps: SchedulerServiceDeps): EndpointHandlers {
  const { endpoints } = deps;
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
  };
}
