import type { KubeConfig, KubernetesObject, KubernetesObjectApi } from "@kubernetes/client-node";

// Loaded on first use: the client takes most of a second to import, and
// every service imports the kit whether or not it runs on Kubernetes.
const clientModule = () => import("@kubernetes/client-node");

/**
 * Objects of one kind that belong to a set: any of them matching the
 * selector that the set no longer holds is deleted.
 */
export interface PruneScope {
  /** e.g. `apps/v1`. */
  apiVersion: string;
  /** e.g. `Deployment`. */
  kind: string;
  /** The namespace to prune in; "" prunes in every namespace (a cluster-wide list). */
  namespace: string;
  /** Selects the set's objects of this kind and nothing else, e.g. `app.kubernetes.io/managed-by=berth-scheduler,app.kubernetes.io/name=shop`. */
  labelSelector: string;
}

/** Where applyObjectSet sends its requests: a client (which caches discovery) or a KubeConfig to make one from. */
export type ObjectApiSource = { client: KubernetesObjectApi } | { kubeConfig: KubeConfig };

/** What applyObjectSet applies and prunes. */
export type ApplyObjectSetOptions = ObjectApiSource & {
  /** The server-side apply field manager; it owns exactly the fields of `objects`. */
  fieldManager: string;
  /** The desired objects, applied in this order; namespaced ones must name their namespace. */
  objects: readonly KubernetesObject[];
  /** The kinds and selectors whose other objects are deleted after the apply. */
  prune?: readonly PruneScope[];
};

/** What an applyObjectSet call touched, each object named by objectReference. */
export interface ApplyObjectSetResult {
  /** Created or changed (their resourceVersion moved). */
  applied: string[];
  /** Applied with no effect: the server already held exactly this configuration. */
  unchanged: string[];
  /** Deleted because the set no longer holds them. */
  pruned: string[];
}

/** `Kind/namespace/name`, or `Kind/name` for a cluster-scoped object: how results name objects. */
export function objectReference(object: KubernetesObject): string {
  const { kind, metadata } = object;
  return metadata?.namespace ? `${kind}/${metadata.namespace}/${metadata.name}` : `${kind}/${metadata?.name}`;
}

/** The client an ObjectApiSource names. */
export async function objectApiOf(source: ObjectApiSource): Promise<KubernetesObjectApi> {
  return "client" in source ? source.client : (await clientModule()).KubernetesObjectApi.makeApiClient(source.kubeConfig);
}

/** True when a client-node call failed with 404 Not Found (an ApiException, whose `code` is the HTTP status). */
export function isKubernetesNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === 404;
}

function checkObjects(objects: readonly KubernetesObject[]): void {
  const seen = new Set<string>();
  for (const object of objects) {
    if (!object.apiVersion || !object.kind || !object.metadata?.name) {
      throw new Error(
        `every object needs apiVersion, kind and metadata.name, got ${JSON.stringify({ apiVersion: object.apiVersion, kind: object.kind, name: object.metadata?.name })}`,
      );
    }
    const reference = objectReference(object);
    if (seen.has(reference)) throw new Error(`${reference} appears twice in the object set`);
    seen.add(reference);
  }
}

/**
 * Server-side applies (with force: berth owns these fields) every object of
 * a set, then deletes the objects in the prune scopes the set no longer
 * holds. Idempotent: applying the same set again reports every object
 * unchanged and sends no write the server acts on. Objects outside the
 * scopes' selectors are never deleted.
 */
export async function applyObjectSet(options: ApplyObjectSetOptions): Promise<ApplyObjectSetResult> {
  checkObjects(options.objects);
  const { PatchStrategy } = await clientModule();
  const client = await objectApiOf(options);
  const prune = options.prune ?? [];

  // What the server holds before the apply: resourceVersions to tell a
  // change from a no-op, and the candidates for pruning.
  const before = new Map<string, string | undefined>();
  const candidates: KubernetesObject[] = [];
  for (const scope of prune) {
    const list = await client.list(scope.apiVersion, scope.kind, scope.namespace, undefined, undefined, undefined, undefined, scope.labelSelector);
    for (const item of list.items) {
      const existing = { ...item, apiVersion: scope.apiVersion, kind: scope.kind };
      before.set(objectReference(existing), item.metadata?.resourceVersion);
      candidates.push(existing);
    }
  }
  await Promise.all(
    options.objects
      .filter((object) => !before.has(objectReference(object)))
      .map(async (object) => {
        try {
          const header = {
            apiVersion: object.apiVersion!,
            kind: object.kind!,
            metadata: { name: object.metadata!.name!, namespace: object.metadata!.namespace },
          };
          before.set(objectReference(object), (await client.read(header)).metadata?.resourceVersion);
        } catch (error) {
          if (!isKubernetesNotFound(error)) throw error;
        }
      }),
  );

  const result: ApplyObjectSetResult = { applied: [], unchanged: [], pruned: [] };
  for (const object of options.objects) {
    const reference = objectReference(object);
    const stored = await client.patch(object, undefined, undefined, options.fieldManager, true, PatchStrategy.ServerSideApply);
    const previous = before.get(reference);
    if (previous !== undefined && stored.metadata?.resourceVersion === previous) result.unchanged.push(reference);
    else result.applied.push(reference);
  }

  const wanted = new Set(options.objects.map(objectReference));
  for (const candidate of candidates) {
    const reference = objectReference(candidate);
    if (wanted.has(reference) || candidate.metadata?.deletionTimestamp) continue;
    try {
      // Background propagation: a Job's pods (orphaned by default for batch/v1) go with it.
      await client.delete(candidate, undefined, undefined, undefined, undefined, "Background");
      result.pruned.push(reference);
    } catch (error) {
      if (!isKubernetesNotFound(error)) throw error;
    }
  }
  return result;
}
