import type { Client } from "@connectrpc/connect";
import type { TurnAllocatorService } from "@berth/proto/turn/v1/turn";

/** Which replica of an rtc process is starting. */
export interface RtcReplica {
  team: string;
  app: string;
  processType: string;
  /** The replica's 0-based slot; its number in names is one more (01, 02, ...). */
  index: number;
  /** The process's replica count, which its per-replica hostnames follow. */
  replicas: number;
}

/** What an rtc replica starts with. */
export interface RtcReplicaSetup {
  /** The TURN_* and BERTH_RTC_* variables. */
  env: Record<string, string>;
  /** The process's route token, which the router builds the per-replica hostnames from. */
  routeToken: string;
}

/** The TURN and routing setup of a replica of a `*-rtc` process. */
export type RtcEnvironment = (replica: RtcReplica) => Promise<RtcReplicaSetup>;

/**
 * Asks the TURN allocator, within `timeoutMs`, to make sure the process has
 * its port, token and secret (idempotent: the same ones every time), then
 * for the replica's variables. A failure fails the replica's start, which is
 * retried: an rtc replica without its TURN variables would be broken.
 */
export function createRtcEnvironment(
  allocator: Pick<Client<typeof TurnAllocatorService>, "ensureAllocation" | "getReplicaEnv">,
  timeoutMs: number,
): RtcEnvironment {
  return async (replica) => {
    const { team, app, processType } = replica;
    const { allocation } = await allocator.ensureAllocation({ team, app, processType, replicas: replica.replicas }, { timeoutMs });
    const { env } = await allocator.getReplicaEnv({ app, processType, replica: replica.index + 1 }, { timeoutMs });
    return { env, routeToken: allocation?.exposure?.routeToken ?? "" };
  };
}
