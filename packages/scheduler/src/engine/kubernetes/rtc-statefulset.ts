import { createHash } from "node:crypto";
import type { V1Container, V1Deployment, V1Secret, V1StatefulSet } from "@kubernetes/client-node";
import { LABEL, standardLabels } from "@berth/kit";

/*
 * Why a StatefulSet with a shell prelude for `*-rtc` processes: every
 * replica needs its own BERTH_RTC_REPLICA (01, 02, …) and BERTH_RTC_HOSTNAME
 * (<token>-NN.<domain>), the per-replica hostname the router sends to that
 * replica alone. A Deployment's pods are interchangeable and unnumbered;
 * one Deployment per replica would break scaling, the HPA and rolling
 * updates. A StatefulSet numbers its pods <name>-0, <name>-1, … and keeps
 * the numbers across restarts and rollouts, so replica NN is always the
 * same pod name. No per-ordinal values exist in a pod template, so the
 * container derives its number from its own pod name (BERTH_REPLICA_NAME,
 * from the downward API; it works on every Kubernetes version, unlike the
 * apps.kubernetes.io/pod-index label of 1.28+) in a few lines of sh before
 * the Procfile command, which already runs under /bin/sh -c. The shared
 * TURN variables, the shared secret among them, come from a Secret through
 * envFrom, never from the spec; its hash in a pod annotation rolls the pods
 * when the secret is rotated.
 */

/** The TURN allocator's variables of a process's first replica (TURN_*, BERTH_RTC_*). */
export type RtcReplicaEnv = Readonly<Record<string, string>>;

/** The variables that differ per replica: derived in the container from its ordinal. */
const PER_REPLICA = new Set(["BERTH_RTC_REPLICA", "BERTH_RTC_HOSTNAME"]);

/** The pod annotation carrying the hash of the TURN Secret's data, so a rotation rolls the pods. */
export const TURN_ENV_HASH_ANNOTATION = "berth.dev/turn-env-hash";

/** The name of the Secret with an rtc process's shared TURN variables. */
export function turnSecretName(objectName: string): string {
  return `${objectName}-turn`;
}

/** `<token>` and `<domain>` of replica 01's `<token>-01.<domain>`. */
function hostnameParts(env: RtcReplicaEnv): { prefix: string; domain: string } {
  const hostname = env.BERTH_RTC_HOSTNAME ?? "";
  const at = hostname.indexOf("-01.");
  if (at <= 0) throw new Error(`the TURN allocator's BERTH_RTC_HOSTNAME "${hostname}" is not <token>-01.<domain>`);
  return { prefix: hostname.slice(0, at), domain: hostname.slice(at + 4) };
}

/** A shell word: single-quoted, so the token and domain are taken literally. */
const quoted = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/**
 * The sh lines that set BERTH_RTC_REPLICA to the pod's ordinal plus one, two
 * digits at least, and BERTH_RTC_HOSTNAME to that replica's hostname.
 */
export function rtcReplicaPrelude(env: RtcReplicaEnv): string {
  const { prefix, domain } = hostnameParts(env);
  return [
    `BERTH_RTC_REPLICA=$(printf '%02d' $((\${BERTH_REPLICA_NAME##*-} + 1)))`,
    `BERTH_RTC_HOSTNAME=${quoted(prefix)}-$BERTH_RTC_REPLICA.${quoted(domain)}`,
    "export BERTH_RTC_REPLICA BERTH_RTC_HOSTNAME",
  ].join("\n");
}

/** The Secret holding an rtc process's shared TURN variables (the shared secret among them). */
export function turnSecretFor(
  statefulSetName: string,
  namespace: string,
  env: RtcReplicaEnv,
  labels: { app: string; team: string; managedBy: string },
): V1Secret {
  const shared = Object.keys(env)
    .filter((key) => !PER_REPLICA.has(key))
    .sort();
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: turnSecretName(statefulSetName),
      namespace,
      labels: standardLabels({ app: labels.app, component: TURN_SECRET_COMPONENT, team: labels.team, managedBy: labels.managedBy, instance: statefulSetName }),
    },
    type: "Opaque",
    data: Object.fromEntries(shared.map((key) => [key, Buffer.from(env[key]!).toString("base64")])),
  };
}

/** The component label of TURN Secrets, which selects them for pruning apart from the release config Secrets. */
export const TURN_SECRET_COMPONENT = "turn-env";

/**
 * The StatefulSet running an rtc process: the Deployment's pod template and
 * counts, pods started in parallel (replicas are independent), each
 * container reading the TURN Secret and numbering itself before its command.
 */
export function rtcStatefulSetFrom(deployment: V1Deployment, turnSecret: V1Secret, env: RtcReplicaEnv): V1StatefulSet {
  const spec = deployment.spec!;
  const template = spec.template;
  const hash = createHash("sha256").update(JSON.stringify(turnSecret.data)).digest("hex").slice(0, 16);
  const containers: V1Container[] = template.spec!.containers.map((container) => {
    // An rtc process always has a Procfile command (run as /bin/sh -c <command>).
    const command = container.command?.at(-1);
    if (!command) throw new Error(`${deployment.metadata!.name}: an rtc process needs its Procfile command`);
    return {
      ...container,
      command: ["/bin/sh", "-c", `${rtcReplicaPrelude(env)}\n${command}`],
      envFrom: [...(container.envFrom ?? []), { secretRef: { name: turnSecret.metadata!.name! } }],
    };
  });
  const spread = template.spec!.topologySpreadConstraints?.map((constraint) => ({ ...constraint, matchLabelKeys: ["controller-revision-hash"] }));
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: deployment.metadata!,
    spec: {
      ...(spec.replicas !== undefined ? { replicas: spec.replicas } : {}),
      selector: spec.selector,
      podManagementPolicy: "Parallel",
      updateStrategy: { type: "RollingUpdate" },
      ...(spec.minReadySeconds ? { minReadySeconds: spec.minReadySeconds } : {}),
      revisionHistoryLimit: spec.revisionHistoryLimit!,
      template: {
        metadata: { ...template.metadata, annotations: { ...template.metadata?.annotations, [TURN_ENV_HASH_ANNOTATION]: hash } },
        spec: { ...template.spec!, containers, ...(spread ? { topologySpreadConstraints: spread } : {}) },
      },
    },
  };
}

/** The label selector of an app's TURN Secrets, for pruning those of rtc processes that went. */
export function turnSecretSelector(app: string, managedBy: string): Record<string, string> {
  return { [LABEL.name]: app, [LABEL.managedBy]: managedBy, [LABEL.component]: TURN_SECRET_COMPONENT };
}
