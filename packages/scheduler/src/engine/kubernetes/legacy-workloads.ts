import type { KubernetesObject, KubernetesObjectApi } from "@kubernetes/client-node";
import { LABEL, labelSelector } from "@berth/kit";
import type { PruneScope } from "@berth/kit";
import type { AppScope } from "./manifests.js";
import { WORKLOAD_KINDS } from "./rollout-status.js";

/*
 * Why workloads of an older name are kept for a while: berth named a process
 * type's Deployment (or StatefulSet) `<app>-<type>`; it now names it
 * `<app>-<type>-<hash>` (the kit's processObjectName). The first apply after
 * an upgrade creates the new workload beside the old one, whose pods carry
 * the same labels and keep serving through the Services. Pruning the old one
 * at once would stop every app's pods together while their replacements
 * start; so it is left out of the prune until the new workload of its type
 * has rolled out, and the next apply removes it.
 */

/**
 * The process types (component labels) of the app whose workload has
 * another name than the one `objects` give it, while the workload of that
 * name has not rolled out yet.
 */
export async function componentsAwaitingReplacement(
  client: KubernetesObjectApi,
  scope: AppScope,
  managedBy: string,
  objects: readonly KubernetesObject[],
): Promise<string[]> {
  const waiting = new Set<string>();
  for (const { kind, rollout } of WORKLOAD_KINDS) {
    const wanted = new Map(
      objects.filter((object) => object.kind === kind).map((object) => [object.metadata!.labels![LABEL.component]!, object.metadata!.name!]),
    );
    if (wanted.size === 0) continue;
    const selector = labelSelector({ [LABEL.name]: scope.app, [LABEL.managedBy]: managedBy });
    const live = (await client.list("apps/v1", kind, scope.namespace, undefined, undefined, undefined, undefined, selector)).items;
    const byName = new Map(live.map((object) => [object.metadata!.name!, object]));
    for (const object of live) {
      const component = object.metadata?.labels?.[LABEL.component] ?? "";
      const replacement = wanted.get(component);
      if (replacement === undefined || replacement === object.metadata!.name) continue;
      const current = byName.get(replacement);
      if (current === undefined || !rollout(current).done) waiting.add(component);
    }
  }
  return [...waiting].sort();
}

/** The prune scopes with the workloads of `components` left out. */
export function keepingComponents(scopes: readonly PruneScope[], components: readonly string[]): PruneScope[] {
  if (components.length === 0) return [...scopes];
  const workloads = new Set(WORKLOAD_KINDS.map(({ kind }) => kind));
  return scopes.map((scope) =>
    workloads.has(scope.kind) ? { ...scope, labelSelector: `${scope.labelSelector},${LABEL.component} notin (${components.join(",")})` } : scope,
  );
}
