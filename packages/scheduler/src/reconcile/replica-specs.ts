import { routingClassOf } from "@berth/kit";
import type { SchedulerConfig } from "../config.js";
import type { ReleaseTaskSpec, ReplicaSpec } from "../engine/engine.js";
import type { FormationEntry } from "../formation.js";
import { resolveHealth } from "../health-settings.js";
import type { ReleaseRecord } from "../store/releases.js";

/** The environment of every process of a release: its config vars and BERTH_* variables. */
export function releaseEnvironment(release: ReleaseRecord, processType: string): Record<string, string> {
  return { ...release.config, BERTH_APP: release.app, BERTH_RELEASE: String(release.version), BERTH_PROCESS_TYPE: processType };
}

/** The command of a process type in a release. */
export function commandOf(release: ReleaseRecord, processType: string): string | undefined {
  return release.processes.find((process) => process.processType === processType)?.command;
}

/** What the engine needs to run replica `replica` of a release. */
export function replicaSpecFor(
  config: SchedulerConfig,
  release: ReleaseRecord,
  formation: FormationEntry | undefined,
  replica: { name: string; processType: string; index: number; zone: string },
): ReplicaSpec {
  const routingClass = routingClassOf(replica.processType);
  return {
    name: replica.name,
    app: release.app,
    processType: replica.processType,
    routingClass,
    index: replica.index,
    releaseVersion: release.version,
    command: commandOf(release, replica.processType) ?? "",
    workDir: release.sourceDir,
    env: {
      ...releaseEnvironment(release, replica.processType),
      BERTH_REPLICA: String(replica.index),
      BERTH_REPLICA_NAME: replica.name,
      BERTH_ZONE: replica.zone,
    },
    health: resolveHealth(routingClass, formation?.health ?? {}, config.health),
    zone: replica.zone,
  };
}

/** What the engine needs to run a release's `release` command. */
export function releaseTaskSpecFor(config: SchedulerConfig, release: ReleaseRecord): ReleaseTaskSpec {
  return {
    name: `${release.app}-release-v${release.version}`,
    app: release.app,
    releaseVersion: release.version,
    command: commandOf(release, "release") ?? "",
    workDir: release.sourceDir,
    env: releaseEnvironment(release, "release"),
    timeoutMs: config.releaseTimeoutMs,
  };
}
