import type { Queryable } from "@berth/kit";
import { internalHostname, invalidArguments, routingClassOf } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { kubernetesNameProblems } from "../engine/kubernetes/manifests.js";
import type { AppRecord } from "../store/apps.js";
import { listApps } from "../store/apps.js";
import { findRelease } from "../store/releases.js";

const tcpTypes = (processTypes: readonly string[]) => processTypes.filter((type) => routingClassOf(type) === RoutingClass.TCP);

/**
 * Refuses, with INVALID_ARGUMENT on `app`, a release whose objects
 * Kubernetes would refuse to name, or whose tcp processes' internal
 * hostnames (their Services' names) another app of the team already has:
 * app `a` with `b-api-tcp` and app `a-b` with `api-tcp` would both be
 * `a-b-api-tcp` to the apps that reach them. Every other object is named
 * with a hash of app and type, so colliding `<app>-<type>` is no conflict there.
 */
export async function checkKubernetesNames(q: Queryable, app: AppRecord, processTypes: readonly string[]): Promise<void> {
  const problems = kubernetesNameProblems(app.name, processTypes, app.currentReleaseVersion + 1).map((problem) => `on Kubernetes, ${problem}`);
  const ours = new Map(tcpTypes(processTypes).map((type) => [internalHostname(app.name, type), type]));
  for (const other of ours.size === 0 ? [] : await listApps(q, app.team)) {
    if (other.name === app.name || other.currentReleaseVersion === 0) continue;
    const release = await findRelease(q, other.name, other.currentReleaseVersion);
    for (const processType of tcpTypes((release?.processes ?? []).map((process) => process.processType))) {
      const hostname = internalHostname(other.name, processType);
      if (ours.has(hostname))
        problems.push(
          `"${hostname}", the internal hostname of process "${ours.get(hostname)}", is already app "${other.name}"'s process "${processType}" in team "${app.team}"; rename the process type or the app`,
        );
    }
  }
  if (problems.length > 0) throw invalidArguments(problems.map((description) => ({ field: "app", description })));
}
