import type { ServiceImpl } from "@connectrpc/connect";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { createAppHandlers } from "./services/apps.js";
import { createCanaryHandlers } from "./services/canary.js";
import { createEndpointHandlers } from "./services/endpoints.js";
import { createFormationHandlers } from "./services/formation.js";
import { createLogHandlers } from "./services/logs.js";
import { createProcessCommandHandlers } from "./services/process-commands.js";
import { createReleaseHandlers } from "./services/releases.js";
import { createRolloutHandlers } from "./services/rollouts.js";
import type { SchedulerServiceDeps } from "./services/service-deps.js";

export type { SchedulerServiceDeps } from "./services/service-deps.js";

/** The handlers of SchedulerService, by resource (see `services/`). */
export function createSchedulerService(deps: SchedulerServiceDeps): ServiceImpl<typeof SchedulerService> {
  return {
    ...createAppHandlers(deps),
    ...createReleaseHandlers(deps),
    ...createFormationHandlers(deps),
    ...createRolloutHandlers(deps),
    ...createLogHandlers(deps),
    ...createEndpointHandlers(deps),
    ...createProcessCommandHandlers(deps),
    ...createCanaryHandlers(deps),
  };
}
