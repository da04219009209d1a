import type { ReleaseRecord } from "./store/releases.js";

/**
 * The environment of every process of a release: its config vars and BERTH_*
 * variables, BERTH_RELEASE_VERSION ("v7") as Heroku's dyno metadata gives
 * HEROKU_RELEASE_VERSION, beside the bare number in BERTH_RELEASE.
 */
export function releaseEnvironment(release: ReleaseRecord, processType: string): Record<string, string> {
  return {
    ...release.config,
    BERTH_APP: release.app,
    BERTH_RELEASE: String(release.version),
    BERTH_RELEASE_VERSION: `v${release.version}`,
    BERTH_PROCESS_TYPE: processType,
  };
}

/** The command of a process type in a release. */
export function commandOf(release: ReleaseRecord, processType: string): string | undefined {
  return release.processes.find((process) => process.processType === processType)?.command;
}

/** The processes of an app whose release has no Procfile (or that has no release yet): a `web`. */
export const DEFAULT_PROCESSES: { processType: string; command: string }[] = [{ processType: "web", command: "" }];
