import { routingClassOf } from "@berth/kit";
import type { SchedulerConfig } from "../../config.js";
import type { FormationEntry } from "../../formation.js";
import { effectiveResources, releaseTaskResources } from "../../formation.js";
import { DEFAULT_POD_SIZE } from "../../pod-sizes.js";
import { resolveHealth } from "../../health-settings.js";
import { commandOf, releaseEnvironment } from "../../release-commands.js";
import type { ReleaseRecord } from "../../store/releases.js";
import { buildTaskName } from "../../build/build-phase.js";
import type { BuildTask, ReleaseTaskSpec } from "../engine.js";
import type { ReplicaSpec } from "./replica-runtime.js";

/** What the engine needs to run replica `replica` of a release. */
export function replicaSpecFor(
  config: SchedulerConfig,
  release: ReleaseRecord,
  formation: FormationEntry | undefined,
  replica: { name: string; processType: string; index: number; zone: string },
  team: string,
): ReplicaSpec {
  const routingClass = routingClassOf(replica.processType);
  return {
    name: replica.name,
    app: release.app,
    team,
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
    ...effectiveResources(formation ?? { size: DEFAULT_POD_SIZE, cpuMillis: null, memoryMb: null }),
  };
}

/** What the engine needs to run a release's `release` command, at the size releaseTaskResources picks from the release's formation. */
export function releaseTaskSpecFor(config: SchedulerConfig, release: ReleaseRecord, team: string): ReleaseTaskSpec {
  return {
    name: `${release.app}-release-v${release.version}`,
    app: release.app,
    team,
    releaseVersion: release.version,
    command: commandOf(release, "release") ?? "",
    workDir: release.sourceDir,
    env: releaseEnvironment(release, "release"),
    timeoutMs: config.releaseTimeoutMs,
    resources: releaseTaskResources(release.formation),
  };
}

/** What the engine needs to run a release's build: a task like the release command's, with its source writable. */
export function buildTaskSpecFor(config: SchedulerConfig, release: ReleaseRecord, team: string, build: BuildTask): ReleaseTaskSpec {
  return {
    name: buildTaskName(release),
    app: release.app,
    team,
    releaseVersion: release.version,
    command: build.command,
    workDir: release.sourceDir,
    env: build.env,
    timeoutMs: config.releaseTimeoutMs,
    writableDirs: [release.sourceDir],
    processType: "build",
  };
}
