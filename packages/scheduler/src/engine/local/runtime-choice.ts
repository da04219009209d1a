import { join } from "node:path";
import { createInternalClient } from "@berth/kit";
import type { Logger } from "@berth/kit";
import { NetpolService } from "@berth/proto/netpol/v1/netpol";
import type { LocalRuntimeConfig } from "../../config.js";
import type { Subnet } from "./container/address-plan.js";
import { parseSubnet } from "./container/address-plan.js";
import { followLocalPolicy } from "./container/local-policy.js";
import { runcUsable } from "./container/runc.js";
import { createRuncReplicaRuntime, openContainerRuntime } from "./container/runc-replica-runtime.js";
import { createChildProcessRuntime } from "./child-process-runtime.js";
import type { ReplicaRuntime } from "./replica-runtime.js";

/** The runtime the local engine runs replicas on, and how to stop what it follows. */
export interface ChosenRuntime {
  runtime: ReplicaRuntime;
  close(): Promise<void>;
}

/**
 * Picks the local runtime: runc containers where runc runs (always with
 * `runc`, refusing to start without it), plain processes otherwise, said
 * loudly. The container runtime follows netpol's local policy for as long
 * as the scheduler runs.
 */
export async function chooseReplicaRuntime(options: {
  config: LocalRuntimeConfig;
  dataDir: string;
  internalToken: string;
  baseEnv: Record<string, string>;
  logger: Logger;
}): Promise<ChosenRuntime> {
  const { config, logger } = options;
  const plainProcesses = (why: string): ChosenRuntime => {
    logger.warn(`isolation: none: replicas run as plain processes of the platform's user (${why}); they can read its files and environment`, {
      runtime: "process",
    });
    return { runtime: createChildProcessRuntime({ host: "127.0.0.1", baseEnv: options.baseEnv }), close: async () => undefined };
  };
  if (config.mode === "process") return plainProcesses("BERTH_LOCAL_RUNTIME=process");
  const runc = await runcUsable();
  if (!runc.usable) {
    if (config.mode === "runc") throw new Error(`BERTH_LOCAL_RUNTIME=runc, but runc cannot run containers here: ${runc.reason}`);
    return plainProcesses(runc.reason);
  }
  const subnet = parseSubnet(config.subnet) as Subnet;
  const containers = await openContainerRuntime({ directory: join(options.dataDir, "containers"), subnet, logger });
  const stop = new AbortController();
  const client = createInternalClient(NetpolService, { baseUrl: config.netpolUrl, token: options.internalToken });
  const following = followLocalPolicy({ client, apply: (allows) => containers.setAllows(allows), signal: stop.signal, logger });
  logger.info("replicas run as runc containers", { runtime: "runc", subnet: config.subnet });
  return {
    runtime: createRuncReplicaRuntime(containers),
    async close() {
      stop.abort();
      await following;
    },
  };
}
