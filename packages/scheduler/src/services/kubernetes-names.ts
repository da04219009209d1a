import type { Queryable } from "@berth/kit";
import { invalidArguments, processObjectName, routingClassOf } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { kubernetesNameProblems } from "../engine/kubernetes/manifests.js";
import type { AppRecord } from "../store/apps.js";
import { listApps } from "../store/apps.js";
import { findRelease } from "../store/releases.js";

/**
 * Refuses, with INVALID_ARGUMENT on `app`, a release whose objects
 * Kubernetes would refuse to name, or whose `<app>-<type>` names (also the
 * internal hostnames) are already taken by another app of the team, in the
 * team's namespace: app `a` with `b-web` and app `a-b` with `web` would
 * otherwise share one Deployment and one Service.
 */
export async function checkKubernetesNames(q: Queryable, app: AppRecord, processTypes: readonly string[]): Promise<void> {
  const problems = kubernetesNameProblems(app.name, processTypes, app.currentReleaseVersion + 1).map((problem) => `on Kubernetes, ${problem}`);
  const ours = new Map(processTypes.filter((type) => routingClassOf(type) !== RoutingClass.RELEASE).map((type) => [processObjectName(app.name, type), type]));
  for (const other of await listApps(q, app.team)) {
    if (other.name === app.name || other.currentReleaseVersion === 0) continue;
    const release = await findRelease(q, other.name, other.currentReleaseVersion);
    for (const { processType } of release?.processes ?? []) {
      const name = processObjectName(other.name, processType);
      if (ours.has(name))
        problems.push(
          `"${name}", the name of process "${ours.get(name)}", is already the name of app "${other.name}"'s process "${processType}" in team "${app.team}"`,
        );
    }
  }
  if (problems.length > 0) throw invalidArguments(problems.map((description) => ({ field: "app", description })));
}
