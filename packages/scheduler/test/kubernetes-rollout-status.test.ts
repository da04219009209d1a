import test from "ava";
import type { V1Deployment, V1DeploymentStatus, V1Job, V1StatefulSet } from "@kubernetes/client-node";
import { deploymentRollout, jobOutcome, statefulSetRollout } from "../src/engine/kubernetes/rollout-status.js";

const deployment = (replicas: number | undefined, generation: number, status: V1DeploymentStatus | undefined): V1Deployment => ({
  metadata: { name: "demo-web", generation },
  spec: { ...(replicas !== undefined ? { replicas } : {}), selector: {}, template: {} },
  ...(status ? { status } : {}),
});

const rollouts: [string, V1Deployment, { done: boolean; deadlineExceeded: boolean; progress: number }][] = [
  ["no status yet", deployment(3, 1, undefined), { done: false, deadlineExceeded: false, progress: 0 }],
  [
    "a status of an older generation",
    deployment(3, 2, { observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 3 }),
    { done: false, deadlineExceeded: false, progress: 0 },
  ],
  [
    "new pods starting beside the old ones",
    deployment(3, 2, { observedGeneration: 2, replicas: 4, updatedReplicas: 1, availableReplicas: 3 }),
    { done: false, deadlineExceeded: false, progress: 4 },
  ],
  [
    "every pod updated, one not yet available",
    deployment(3, 2, { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 2 }),
    { done: false, deadlineExceeded: false, progress: 5 },
  ],
  [
    "an old pod still terminating",
    deployment(3, 2, { observedGeneration: 2, replicas: 4, updatedReplicas: 3, availableReplicas: 3 }),
    { done: false, deadlineExceeded: false, progress: 6 },
  ],
  [
    "rolled out",
    deployment(3, 2, { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3 }),
    { done: true, deadlineExceeded: false, progress: 6 },
  ],
  ["scaled to zero", deployment(0, 4, { observedGeneration: 4 }), { done: true, deadlineExceeded: false, progress: 0 }],
  [
    "autoscaled (no replicas in the spec), one pod",
    deployment(undefined, 1, { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1 }),
    { done: true, deadlineExceeded: false, progress: 2 },
  ],
  [
    "stuck past the cluster's progress deadline",
    deployment(2, 3, {
      observedGeneration: 3,
      replicas: 3,
      updatedReplicas: 1,
      availableReplicas: 2,
      conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded" }],
    }),
    { done: false, deadlineExceeded: true, progress: 3 },
  ],
];

for (const [label, object, expected] of rollouts) {
  test(`a Deployment with ${label}`, (t) => {
    t.like(deploymentRollout(object), expected);
  });
}

/** A StatefulSet of `replicas` at generation 2, whose controller has seen it and counts `ready`, `available` and `updated` pods. */
const statefulSet = (
  replicas: number,
  counts: { ready: number; available: number; updated: number; current: "old" | "new"; observed?: number },
  partition?: number,
): V1StatefulSet => ({
  metadata: { name: "demo-sfu-rtc", generation: 2 },
  spec: {
    replicas,
    selector: {},
    template: {},
    updateStrategy: { type: "RollingUpdate", ...(partition !== undefined ? { rollingUpdate: { partition } } : {}) },
  },
  status: {
    observedGeneration: counts.observed ?? 2,
    replicas,
    readyReplicas: counts.ready,
    availableReplicas: counts.available,
    updatedReplicas: counts.updated,
    currentRevision: counts.current === "new" ? "demo-sfu-rtc-b" : "demo-sfu-rtc-a",
    updateRevision: "demo-sfu-rtc-b",
  },
});

const setRollouts: [string, V1StatefulSet, { done: boolean; progress: number }][] = [
  ["a status of an older generation", statefulSet(3, { ready: 3, available: 3, updated: 3, current: "new", observed: 1 }), { done: false, progress: 0 }],
  ["the highest pod replaced, not ready yet", statefulSet(3, { ready: 2, available: 2, updated: 1, current: "old" }), { done: false, progress: 3 }],
  ["every pod ready, one still at the old revision", statefulSet(3, { ready: 3, available: 3, updated: 2, current: "old" }), { done: false, progress: 5 }],
  [
    "every pod updated and ready: the update revision is current",
    statefulSet(3, { ready: 3, available: 3, updated: 3, current: "new" }),
    { done: true, progress: 6 },
  ],
  [
    "updated ready but not yet available (minReadySeconds)",
    statefulSet(2, { ready: 2, available: 1, updated: 2, current: "new" }),
    { done: false, progress: 3 },
  ],
  ["a partitioned rollout past its partition", statefulSet(3, { ready: 3, available: 3, updated: 2, current: "old" }, 1), { done: true, progress: 5 }],
];

for (const [label, object, expected] of setRollouts) {
  test(`a StatefulSet with ${label}`, (t) => {
    t.like(statefulSetRollout(object), { ...expected, deadlineExceeded: false });
  });
}

const job = (conditions: { type: string; status: string; reason?: string; message?: string }[]): V1Job => ({
  metadata: { name: "demo-release-v1" },
  status: { conditions },
});

const outcomes: [string, V1Job, ReturnType<typeof jobOutcome>][] = [
  ["no conditions", job([]), undefined],
  ["a FailureTarget not yet Failed", job([{ type: "FailureTarget", status: "True" }]), undefined],
  [
    "Complete",
    job([
      { type: "SuccessCriteriaMet", status: "True" },
      { type: "Complete", status: "True" },
    ]),
    { succeeded: true },
  ],
  ["Complete=False", job([{ type: "Complete", status: "False" }]), undefined],
  [
    "Failed by its pod",
    job([{ type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "backoff" }]),
    { succeeded: false, timedOut: false, reason: "BackoffLimitExceeded", message: "backoff" },
  ],
  [
    "Failed at its deadline",
    job([{ type: "Failed", status: "True", reason: "DeadlineExceeded", message: "too long" }]),
    { succeeded: false, timedOut: true, reason: "DeadlineExceeded", message: "too long" },
  ],
];

for (const [label, object, expected] of outcomes) {
  test(`a Job with ${label}`, (t) => {
    t.deepEqual(jobOutcome(object), expected);
  });
}
