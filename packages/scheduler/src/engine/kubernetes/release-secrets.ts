import type { KubernetesObject, KubernetesObjectApi, V1PodTemplateSpec } from "@kubernetes/client-node";
import { LABEL, isKubernetesNotFound, labelSelector } from "@berth/kit";
import { REVISION_HISTORY_LIMIT } from "./manifests.js";
import type { AppScope, ManifestSettings } from "./manifests.js";

/**
 * How many of the newest releases keep their config Secret. berth's own
 * rollback never needs an old Secret: it makes a new release (with a new
 * Secret) from the config stored in PostgreSQL. What does read old Secrets
 * is an old ReplicaSet brought back by `kubectl rollout undo` (a Deployment
 * keeps REVISION_HISTORY_LIMIT of them) and the previous release's pods
 * while a rollout replaces them: the current release plus that history.
 * Secrets a live ReplicaSet or Job still names are kept whatever their age.
 */
export const RELEASE_SECRETS_KEPT = REVISION_HISTORY_LIMIT + 1;

/** A config Secret of the app, with the release version its `app.kubernetes.io/version` label names. */
export interface ReleaseSecret {
  name: string;
  version: number;
}

/**
 * The config Secrets to delete: every one older than the `kept` newest
 * release versions (counted from the newest of `current` and the Secrets,
 * so a rollback to an older release keeps the newer ones) that no live
 * workload references. Pure, for table tests.
 */
export function releaseSecretsToPrune(secrets: readonly ReleaseSecret[], current: number, referenced: ReadonlySet<string>, kept: number): string[] {
  const newest = Math.max(current, ...secrets.map((secret) => secret.version));
  return secrets.filter((secret) => secret.version <= newest - kept && !referenced.has(secret.name)).map((secret) => secret.name);
}

/** The Secrets a pod template reads its environment from. */
function secretsOf(template: V1PodTemplateSpec | undefined): string[] {
  return (template?.spec?.containers ?? []).flatMap((container) =>
    (container.envFrom ?? []).flatMap((source) => (source.secretRef?.name ? [source.secretRef.name] : [])),
  );
}

/**
 * Deletes the app's config Secrets no longer reachable (see
 * RELEASE_SECRETS_KEPT and releaseSecretsToPrune); returns their names.
 * Run after the current release's objects are applied.
 */
export async function pruneReleaseSecrets(
  client: KubernetesObjectApi,
  scope: AppScope,
  current: number,
  settings: Pick<ManifestSettings, "managedBy">,
): Promise<string[]> {
  const ofApp = { [LABEL.name]: scope.app, [LABEL.managedBy]: settings.managedBy };
  const list = (apiVersion: string, kind: string, selector: Record<string, string>) =>
    client.list(apiVersion, kind, scope.namespace, undefined, undefined, undefined, undefined, labelSelector(selector));
  const secrets = (await list("v1", "Secret", { ...ofApp, [LABEL.component]: "config" })).items.flatMap((secret) => {
    const version = Number(/^v(\d+)$/.exec(secret.metadata?.labels?.[LABEL.version] ?? "")?.[1]);
    return Number.isInteger(version) && secret.metadata?.name ? [{ name: secret.metadata.name, version }] : [];
  });
  // A Deployment's ReplicaSets carry its pod template's labels, which are the app's standard labels.
  const workloads = [...(await list("apps/v1", "ReplicaSet", ofApp)).items, ...(await list("batch/v1", "Job", ofApp)).items] as (KubernetesObject & {
    spec?: { template?: V1PodTemplateSpec };
  })[];
  const referenced = new Set(workloads.flatMap((workload) => secretsOf(workload.spec?.template)));
  const prune = releaseSecretsToPrune(secrets, current, referenced, RELEASE_SECRETS_KEPT);
  for (const name of prune) {
    try {
      await client.delete({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: scope.namespace } });
    } catch (error) {
      if (!isKubernetesNotFound(error)) throw error;
    }
  }
  return prune;
}
