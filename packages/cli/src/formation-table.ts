import type { ProcessFormation } from "@berth/proto/type/v1/process";
import { autoscaleText, cpuText, exposureText, isolationText, memoryText, routingText } from "./display.js";
import type { Output } from "./output.js";
import type { Column } from "./table.js";

const columns: Column<ProcessFormation>[] = [
  { header: "type", value: (p) => p.processType },
  { header: "replicas", value: (p) => `${p.readyReplicas}/${p.replicas}` },
  { header: "size", value: (p) => (p.resourcesOverridden ? `${p.size}*` : p.size) },
  { header: "cpu", value: (p) => cpuText(p.cpuMillis) },
  { header: "memory", value: (p) => memoryText(p.memoryMb) },
  { header: "routing", value: routingText },
  { header: "autoscale", value: autoscaleText },
  { header: "reachable at", value: exposureText },
  { header: "isolation", value: (p) => isolationText(p.isolation) },
];

/**
 * Prints the formation (`pods`): per type ready/desired replicas, size,
 * resources, routing, autoscale, address and isolation; and, loudly, when replicas run
 * without isolation (plain processes of the platform's user).
 */
export function printFormation(out: Output, processes: readonly ProcessFormation[]): void {
  out.table(columns, processes, "No process types yet: deploy a release first.");
  if (processes.some((process) => process.isolation === "none")) out.note(ISOLATION_NONE);
}

/** The warning shown wherever replicas run as plain processes. */
export const ISOLATION_NONE = "isolation: none (replicas run as plain processes of the platform's user, not in containers)";
