import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseProcfile, processObjectName, teamNamespace } from "@berth/kit";
import { readSchedulerConfig } from "../../src/config.js";
import { manifestSettingsFrom } from "../../src/engine/kubernetes/manifests.js";
import type { AppManifestInput, ManifestSettings } from "../../src/engine/kubernetes/manifests.js";
import type { FormationEntry } from "../../src/formation.js";
import type { AutoscaleRuleRecord } from "../../src/store/formation.js";
import type { ReleaseRecord } from "../../src/store/releases.js";

const procfile = parseProcfile(readFileSync(fileURLToPath(new URL("../../../../examples/demo/Procfile", import.meta.url)), "utf8"));
if (!procfile.ok) throw new Error(`examples/demo/Procfile: ${procfile.problems.join("; ")}`);

/** The process types of examples/demo: web, admin-web, worker, release, api-tcp. */
export const DEMO_PROCESSES = procfile.processes.map(({ processType, command }) => ({ processType, command }));

/** The manifest settings of a default scheduler configuration. */
export const DEMO_SETTINGS: ManifestSettings = manifestSettingsFrom(readSchedulerConfig({}));

/** The namespace of the demo app's team, acme. */
export const NAMESPACE = teamNamespace(DEMO_SETTINGS.namespaceBase, "acme");

/** The name of the demo app's objects of one process type. */
export function objectName(processType: string): string {
  return processObjectName("demo", processType);
}

/** A formation entry of `processType` with the defaults and `changes`. */
export function formationEntry(processType: string, changes: Partial<FormationEntry> = {}): FormationEntry {
  return { processType, replicas: 0, size: "standard-1x", cpuMillis: null, memoryMb: null, health: {}, restartGeneration: 0, ...changes };
}

/** Release `version` of the demo app as the scheduler stores it. */
export function demoRelease(version = 1, changes: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    app: "demo",
    version,
    artifact: { image: `registry.example.com/acme/demo:v${version}`, digest: "" },
    sourceDir: "",
    processes: DEMO_PROCESSES,
    config: { GREETING: "hello" },
    formation: [],
    description: "",
    status: "pending",
    createdAt: new Date(0),
    rollbackOfVersion: 0,
    failureReason: "",
    failureMessage: "",
    failureLog: [],
    releasePhase: "pending",
    buildPhase: "none",
    releaseTaskId: "",
    releaseTaskDeadline: null,
    ...changes,
  };
}

/** The demo app at release `version` with web=1, admin-web=1, worker=1, api-tcp=1 unless `formation` says otherwise. */
export function demoApp(
  options: { team?: string; version?: number; formation?: FormationEntry[]; autoscaleRules?: AutoscaleRuleRecord[]; release?: Partial<ReleaseRecord> } = {},
): AppManifestInput {
  return {
    team: options.team ?? "acme",
    release: demoRelease(options.version ?? 1, options.release),
    formation: options.formation ?? ["web", "admin-web", "worker", "api-tcp"].map((type) => formationEntry(type, { replicas: 1 })),
    autoscaleRules: options.autoscaleRules ?? [],
  };
}
