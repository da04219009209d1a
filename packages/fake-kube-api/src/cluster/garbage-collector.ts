import type { JsonObject } from "../patch.js";
import type { KindRegistry } from "../registry.js";
import { type Cluster, type Controller, metaOf } from "./runtime.js";

/**
 * The garbage collector, background propagation: when an owner is deleted,
 * dependents whose ownerReferences all point at deleted owners are deleted
 * too (a ReplicaSet's pods after its Deployment, a Service's EndpointSlices).
 */
export function garbageCollector(cluster: Cluster, registry: KindRegistry): Controller {
  const namespaced = () => registry.all().filter((kind) => kind.namespaced);
  const references = (object: JsonObject) => (Array.isArray(metaOf(object).ownerReferences) ? (metaOf(object).ownerReferences as JsonObject[]) : []);
  const uidsIn = (namespace: string) => new Set(namespaced().flatMap((kind) => cluster.list(kind, namespace).map((object) => metaOf(object).uid)));
  return {
    name: "garbage-collector",
    triggers: registry
      .all()
      .map((kind) => ({ kind, keys: (event) => (event.type === "DELETED" && kind.namespaced ? [`${String(metaOf(event.object).namespace)}/`] : []) })),
    reconcile(key) {
      const namespace = key.slice(0, -1);
      const alive = uidsIn(namespace);
      for (const kind of namespaced()) {
        for (const object of cluster.list(kind, namespace)) {
          const owners = references(object);
          if (owners.length > 0 && owners.every((owner) => !alive.has(owner.uid)) && metaOf(object).deletionTimestamp === undefined)
            cluster.remove(kind, namespace, String(metaOf(object).name));
        }
      }
      return undefined;
    },
  };
}
