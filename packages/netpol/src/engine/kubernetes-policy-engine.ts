import type { KubernetesObject, KubernetesObjectApi } from "@kubernetes/client-node";
import { LABEL, applyObjectSet, isKubernetesNotFound, labelSelector, objectApiOf, standardLabels } from "@berth/kit";
import type { ObjectApiSource, PruneScope } from "@berth/kit";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { NAMESPACE_NAME_LABEL, NETPOL_MANAGER, POLICY_DIGEST_ANNOTATION, teamPruneScope } from "../compile/kubernetes-policies.js";
import type { KubernetesPolicySettings } from "../compile/kubernetes-policies.js";

/** One object a plan creates, updates, deletes or leaves. */
export interface PlannedChange {
  action: "create" | "update" | "delete" | "unchanged";
  name: string;
  namespace: string;
  /** The desired object (absent for a delete). */
  object?: INetworkPolicy;
}

/** What a reconcile of one team did. */
export interface TeamPlan {
  changes: PlannedChange[];
  applied: boolean;
  /** Objects written or deleted: how much one change costs the cluster. */
  touched: number;
}

/** Compares what a team should have with what its namespace holds, and applies the difference. */
export interface PolicyEngine {
  /** `desired` are the team's compiled policies (all in its namespace); with dryRun nothing is written. */
  plan(team: string, desired: readonly INetworkPolicy[], dryRun: boolean): Promise<TeamPlan>;
}

/**
 * client-node serialises objects through its own models, where an ingress
 * rule's `from` is spelled `_from` (a plain `from` would be dropped on the
 * way out, and an ingress rule without `from` admits everyone).
 */
export function clientShape(policy: INetworkPolicy): KubernetesObject {
  return {
    ...policy,
    spec: policy.spec && { ...policy.spec, ingress: policy.spec.ingress?.map(({ from, ...rule }) => (from ? { ...rule, _from: from } : rule)) },
  } as KubernetesObject;
}

const digestOf = (object: KubernetesObject | INetworkPolicy) => object.metadata?.annotations?.[POLICY_DIGEST_ANNOTATION];

/**
 * The kubernetes engine: one LIST of the team's policies, then a server-side
 * apply of only the objects whose digest differs and a delete of only the
 * ones no longer wanted, so a trust change writes one object however large
 * the team.
 */
export function createKubernetesPolicyEngine(source: ObjectApiSource, settings: KubernetesPolicySettings): PolicyEngine {
  let client: Promise<KubernetesObjectApi> | undefined;
  const api = () => (client ??= objectApiOf(source));

  async function ensureNamespace(objects: KubernetesObjectApi, namespace: string, team: string): Promise<void> {
    try {
      await objects.read({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    } catch (error) {
      if (!isKubernetesNotFound(error)) throw error;
      const labels = { ...standardLabels({ app: "berth", component: "team", managedBy: NETPOL_MANAGER, team }), [NAMESPACE_NAME_LABEL]: namespace };
      await applyObjectSet({
        client: objects,
        fieldManager: NETPOL_MANAGER,
        objects: [{ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels } }],
      });
    }
  }

  return {
    async plan(team, desired, dryRun) {
      const objects = await api();
      const scope = teamPruneScope(team, settings);
      let live: KubernetesObject[] = [];
      try {
        live = (await objects.list(scope.apiVersion, scope.kind, scope.namespace, undefined, undefined, undefined, undefined, scope.labelSelector)).items;
      } catch (error) {
        // No namespace yet: nothing is applied there.
        if (!isKubernetesNotFound(error)) throw error;
      }
      const liveByName = new Map(live.map((object) => [object.metadata!.name!, object]));
      const wanted = new Set(desired.map((policy) => policy.metadata!.name!));
      const changes: PlannedChange[] = desired.map((object) => {
        const name = object.metadata!.name!;
        const current = liveByName.get(name);
        const action = !current ? "create" : digestOf(current) === digestOf(object) ? "unchanged" : "update";
        return { action, name, namespace: scope.namespace, object };
      });
      for (const name of [...liveByName.keys()].sort()) if (!wanted.has(name)) changes.push({ action: "delete", name, namespace: scope.namespace });
      const writes = changes.filter((change) => change.action === "create" || change.action === "update");
      const deletes = changes.filter((change) => change.action === "delete");
      if (dryRun || writes.length + deletes.length === 0) return { changes, applied: false, touched: 0 };
      if (changes.some((change) => change.action === "create")) await ensureNamespace(objects, scope.namespace, team);
      // A prune scope per stale object selects exactly it, so unchanged objects are neither re-sent nor deleted.
      const prune: PruneScope[] = deletes.map((change) => ({
        ...scope,
        labelSelector: `${scope.labelSelector},${labelSelector({ [LABEL.instance]: change.name })}`,
      }));
      const result = await applyObjectSet({
        client: objects,
        fieldManager: NETPOL_MANAGER,
        objects: writes.map((change) => clientShape(change.object!)),
        prune,
      });
      return { changes, applied: true, touched: result.applied.length + result.pruned.length };
    },
  };
}

/** The engine of a platform with no cluster: plans show what would be created; nothing is ever applied. */
export function createDetachedPolicyEngine(settings: KubernetesPolicySettings): PolicyEngine {
  return {
    async plan(team, desired) {
      const namespace = teamPruneScope(team, settings).namespace;
      return { changes: desired.map((object) => ({ action: "create", name: object.metadata!.name!, namespace, object })), applied: false, touched: 0 };
    },
  };
}
