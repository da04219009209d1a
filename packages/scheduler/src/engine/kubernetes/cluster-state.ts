import type { KubeConfig, KubernetesObject, V1EndpointSlice, V1Pod } from "@kubernetes/client-node";
import { LABEL, labelSelector, watchCollection } from "@berth/kit";
import type { CollectionWatch, Logger } from "@berth/kit";

/** Options of createClusterState. */
export interface ClusterStateOptions {
  kubeConfig: KubeConfig;
  /** Only pods carrying this managed-by label are berth's replicas. */
  managedBy: string;
  logger: Logger;
  /** First wait after a failed list or watch (see watchCollection). */
  retryMs?: number;
}

/** Which apps of a namespace changed. */
export type ClusterStateListener = (namespace: string, apps: ReadonlySet<string>) => void;

/** What the scheduler knows of the pods and EndpointSlices of the namespaces it follows. */
export interface ClusterState {
  /** Starts following a namespace (nothing when it is followed already). */
  follow(namespace: string): void;
  /** Whether both collections of the namespace have been listed once: before that, an empty view means nothing. */
  synced(namespace: string): boolean;
  /** Resolves once the namespace is synced (follow it first). */
  whenSynced(namespace: string): Promise<void>;
  /** The berth pods of the namespace. */
  pods(namespace: string): V1Pod[];
  /** The EndpointSlices of the namespace. */
  slices(namespace: string): V1EndpointSlice[];
  /** Calls `listener` with the apps whose pods or endpoints changed; returns the unsubscribe. */
  onChange(listener: ClusterStateListener): () => void;
  close(): void;
}

interface Followed {
  pods: ReadonlyMap<string, KubernetesObject> | undefined;
  slices: ReadonlyMap<string, KubernetesObject> | undefined;
  /** By app: a text that changes whenever anything the app's views show of its pods or endpoints changes. */
  signatures: Map<string, string>;
  watches: CollectionWatch[];
  whenSynced: Promise<void>;
  markSynced: () => void;
}

function appOf(pod: KubernetesObject | undefined): string | undefined {
  return pod?.metadata?.labels?.[LABEL.name];
}

/**
 * Informers over the pods and EndpointSlices of each team namespace the
 * scheduler runs apps in: list, then watch from the list's resourceVersion,
 * resuming after a cut and listing again after 410 Gone (watchCollection).
 * A change tells the listeners which apps it touched, so that only those
 * are looked at again; the views are read from here, not polled.
 */
export function createClusterState(options: ClusterStateOptions): ClusterState {
  const namespaces = new Map<string, Followed>();
  const listeners = new Set<ClusterStateListener>();
  let closed = false;

  /** What each app's views depend on: its pods' versions, and the addresses and readiness the slices list for them. */
  function signaturesOf(followed: Followed): Map<string, string> {
    const parts = new Map<string, string[]>();
    const add = (app: string | undefined, part: string) => {
      if (app === undefined) return;
      let list = parts.get(app);
      if (list === undefined) parts.set(app, (list = []));
      list.push(part);
    };
    for (const pod of followed.pods?.values() ?? []) add(appOf(pod), `${pod.metadata!.name}@${pod.metadata!.resourceVersion}`);
    for (const slice of (followed.slices?.values() ?? []) as Iterable<V1EndpointSlice>) {
      for (const endpoint of slice.endpoints ?? []) {
        const name = endpoint.targetRef?.name ?? "";
        add(appOf(followed.pods?.get(name)), `${slice.metadata!.name}:${name}:${endpoint.addresses.join(",")}:${endpoint.conditions?.ready === true}`);
      }
    }
    return new Map([...parts].map(([app, list]) => [app, list.sort().join(" ")]));
  }

  function changed(namespace: string, followed: Followed): void {
    if (followed.pods !== undefined && followed.slices !== undefined) followed.markSynced();
    const next = signaturesOf(followed);
    const apps = new Set<string>();
    for (const app of new Set([...next.keys(), ...followed.signatures.keys()])) {
      if (next.get(app) !== followed.signatures.get(app)) apps.add(app);
    }
    followed.signatures = next;
    if (apps.size === 0) return;
    for (const listener of listeners) listener(namespace, apps);
  }

  return {
    follow(namespace) {
      // A pass still under way when the engine closes must not start informers nobody stops.
      if (closed || namespaces.has(namespace)) return;
      let markSynced!: () => void;
      const whenSynced = new Promise<void>((resolve) => {
        markSynced = resolve;
      });
      const followed: Followed = { pods: undefined, slices: undefined, signatures: new Map(), watches: [], whenSynced, markSynced };
      namespaces.set(namespace, followed);
      const common = { kubeConfig: options.kubeConfig, namespace, logger: options.logger, ...(options.retryMs ? { retryMs: options.retryMs } : {}) };
      followed.watches.push(
        watchCollection({
          ...common,
          apiVersion: "v1",
          kind: "Pod",
          plural: "pods",
          labelSelector: labelSelector({ [LABEL.managedBy]: options.managedBy }),
          onChange(objects) {
            followed.pods = objects;
            changed(namespace, followed);
          },
        }),
        // Slices carry no labels of the Service's, so every slice of the namespace is followed; berth's are told apart by their pods.
        watchCollection({
          ...common,
          apiVersion: "discovery.k8s.io/v1",
          kind: "EndpointSlice",
          plural: "endpointslices",
          onChange(objects) {
            followed.slices = objects;
            changed(namespace, followed);
          },
        }),
      );
    },
    synced(namespace) {
      const followed = namespaces.get(namespace);
      return followed?.pods !== undefined && followed.slices !== undefined;
    },
    whenSynced(namespace) {
      return namespaces.get(namespace)?.whenSynced ?? Promise.reject(new Error(`namespace ${namespace} is not followed`));
    },
    pods(namespace) {
      return [...(namespaces.get(namespace)?.pods?.values() ?? [])] as V1Pod[];
    },
    slices(namespace) {
      return [...(namespaces.get(namespace)?.slices?.values() ?? [])] as V1EndpointSlice[];
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed = true;
      for (const followed of namespaces.values()) for (const watch of followed.watches) watch.stop();
      namespaces.clear();
      listeners.clear();
    },
  };
}
