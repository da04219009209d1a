import { failedPrecondition } from "@berth/kit";
import type { CommandRunner } from "../engine.js";

/**
 * `run` and `ps:exec` on a cluster are not built yet: they would need a Pod
 * per one-off and the exec subresource (a WebSocket upgrade). Until then
 * they are refused with the way round, not left to hang.
 */
export function createKubernetesCommandRunner(): CommandRunner {
  return {
    // biome-ignore lint/correctness/useYield: refused before anything runs
    async *runOneOff() {
      throw failedPrecondition("berth run is not available on the kubernetes engine yet; use kubectl run in the team's namespace");
    },
    // biome-ignore lint/correctness/useYield: refused before anything runs
    async *exec() {
      throw failedPrecondition("berth ps:exec is not available on the kubernetes engine yet; use kubectl exec on the pod");
    },
  };
}
