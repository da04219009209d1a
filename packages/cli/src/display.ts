import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { enumText, routingClassName } from "@berth/kit/contract";
import { CertificateState } from "@berth/proto/type/v1/network";
import { ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import type { ProcessFormation } from "@berth/proto/type/v1/process";
import { ReleaseStatus, RolloutState } from "@berth/proto/type/v1/release";

/** "rolled back", "succeeded"... */
export const releaseStatusText = (status: ReleaseStatus) => enumText(ReleaseStatus, status);
/** "rolling", "failed"... */
export const rolloutStateText = (state: RolloutState) => enumText(RolloutState, state);
/** "up", "crashed"... */
export const replicaStateText = (state: ReplicaState) => enumText(ReplicaState, state);
/** "issued", "pending"... */
export const certificateStateText = (state: CertificateState) => enumText(CertificateState, state);

/** An ISO time to the second, or "-" when unset. */
export function timeText(timestamp: Timestamp | undefined): string {
  return timestamp
    ? timestampDate(timestamp)
        .toISOString()
        .replace(/\.\d{3}Z$/, "Z")
    : "-";
}

/** How long ago, compactly: "42s", "5m", "3h", "2d". */
export function ageText(timestamp: Timestamp | undefined, now: Date = new Date()): string {
  if (!timestamp) return "-";
  const seconds = Math.max(0, Math.floor((now.getTime() - timestampDate(timestamp).getTime()) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/** Memory as people read it: "512M", "2G". */
export function memoryText(memoryMb: number): string {
  return memoryMb >= 1024 && memoryMb % 1024 === 0 ? `${memoryMb / 1024}G` : `${memoryMb}M`;
}

/** CPU as a share of cores: "250m" below one core, "2" above. */
export function cpuText(cpuMillis: number): string {
  return cpuMillis % 1000 === 0 ? `${cpuMillis / 1000}` : `${cpuMillis}m`;
}

/** Where a process can be reached: its URLs, its internal address, or "-" for workers. */
export function exposureText(process: ProcessFormation): string {
  switch (process.routingClass) {
    case RoutingClass.WEB:
      return process.urls.join(", ") || "-";
    case RoutingClass.TCP:
      return process.internalPort ? `${process.internalHostname}:${process.internalPort}` : process.internalHostname || "-";
    case RoutingClass.RTC:
      if (!process.rtc) return "-";
      return [`${process.rtc.turnHostname}:${process.rtc.port}`, ...process.rtc.replicaHostnames].join(", ");
    default:
      return "-";
  }
}

/** The routing class as shown in tables. */
export const routingText = (process: ProcessFormation) => routingClassName(process.routingClass);

/** "3-8 @ 75% cpu", or "-" without a rule. */
export function autoscaleText(process: ProcessFormation): string {
  const rule = process.autoscale;
  return rule ? `${rule.minReplicas}-${rule.maxReplicas} @ ${rule.targetCpuPercent}% cpu` : "-";
}

/** How replicas are isolated, as `ps` and `pods` show it: runc containers, plain processes ("none"), or pods. */
export function isolationText(isolation: string): string {
  if (isolation === "container") return "runc";
  return isolation || "-";
}
