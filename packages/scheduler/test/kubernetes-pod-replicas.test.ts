import test from "ava";
import type { V1ContainerStatus, V1EndpointSlice, V1Pod } from "@kubernetes/client-node";
import { ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import { appEndpointSets, appPods, podReason, podReplicas, podState } from "../src/engine/kubernetes/pod-replicas.js";

function pod(
  name: string,
  options: { type?: string; ready?: boolean; status?: Partial<V1ContainerStatus>; phase?: string; deleting?: boolean; created?: string } = {},
): V1Pod {
  const type = options.type ?? "web";
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      creationTimestamp: (options.created ?? "2026-12-03T08:00:00Z") as unknown as Date,
      labels: { "app.kubernetes.io/name": "shop", "app.kubernetes.io/component": type, "app.kubernetes.io/version": "v4" },
      ...(options.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    spec: { nodeName: "node-b", containers: [{ name: type, image: "shop:v4", ports: [{ containerPort: 5000 }] }] },
    status: {
      phase: options.phase ?? "Running",
      podIP: `10.244.1.${name.length}`,
      conditions: [{ type: "Ready", status: options.ready ? "True" : "False" }],
      containerStatuses: [
        {
          name: type,
          image: "shop:v4",
          imageID: "",
          ready: options.ready ?? false,
          restartCount: 0,
          state: { running: { startedAt: "2026-12-03T08:00:05Z" as unknown as Date } },
          ...options.status,
        },
      ],
    },
  };
}

const crashed = (reason: string): Partial<V1ContainerStatus> => ({
  restartCount: 3,
  state: { waiting: { reason: "CrashLoopBackOff" } },
  lastState: { terminated: { exitCode: reason === "OOMKilled" ? 137 : 1, reason } },
});

const table: [string, V1Pod, ReplicaState, string][] = [
  ["ready", pod("a", { ready: true }), ReplicaState.UP, ""],
  ["started, not ready yet", pod("a"), ReplicaState.STARTING, ""],
  ["crash looping", pod("a", { status: crashed("Error") }), ReplicaState.CRASHED, "CrashLoopBackOff"],
  [
    "running again between two back-offs, not ready",
    pod("a", { status: { restartCount: 2, lastState: { terminated: { exitCode: 1, reason: "Error" } } } }),
    ReplicaState.STARTING,
    "CrashLoopBackOff",
  ],
  [
    "ready again after a crash",
    pod("a", { ready: true, status: { restartCount: 2, lastState: { terminated: { exitCode: 1, reason: "Error" } } } }),
    ReplicaState.UP,
    "Error",
  ],
  ["backing off after an OOM kill", pod("a", { status: crashed("OOMKilled") }), ReplicaState.CRASHED, "OOMKilled"],
  [
    "running again after an OOM kill",
    pod("a", { ready: true, status: { restartCount: 1, lastState: { terminated: { exitCode: 137, reason: "OOMKilled" } } } }),
    ReplicaState.UP,
    "OOMKilled",
  ],
  ["image not pulled", pod("a", { status: { state: { waiting: { reason: "ErrImagePull" } } } }), ReplicaState.FAILED, "ErrImagePull"],
  ["pull backing off", pod("a", { status: { state: { waiting: { reason: "ImagePullBackOff" } } } }), ReplicaState.FAILED, "ImagePullBackOff"],
  ["terminating", pod("a", { ready: true, deleting: true }), ReplicaState.STOPPING, ""],
  ["succeeded", pod("a", { phase: "Succeeded", status: { state: { terminated: { exitCode: 0, reason: "Completed" } } } }), ReplicaState.SUCCEEDED, "Completed"],
];

for (const [what, subject, state, reason] of table) {
  test(`a pod ${what} is ${ReplicaState[state]}${reason ? ` because ${reason}` : ""}`, (t) => {
    t.is(podState(subject), state);
    t.is(podReason(subject), reason);
  });
}

test("an app's replicas are its pods numbered per type by age, with the zone of their node; release Job pods and other apps' pods are no replicas", (t) => {
  const job = pod("shop-release-v4-x", { type: "release" });
  const other = pod("other-web-1", { ready: true });
  other.metadata!.labels!["app.kubernetes.io/name"] = "other";
  const pods = appPods(
    [
      pod("shop-web-2", { ready: true, created: "2026-12-03T08:01:00Z" }),
      job,
      other,
      pod("shop-web-1", { ready: true }),
      pod("shop-worker-1", { type: "worker" }),
    ],
    "shop",
  );
  const replicas = podReplicas(pods, (node) => (node === "node-b" ? "zone-b" : undefined));
  t.deepEqual(
    replicas.map((replica) => [replica.name, replica.processType, replica.index, replica.releaseVersion, replica.zone, replica.port, replica.isolation]),
    [
      ["shop-web-1", "web", 0, 4, "zone-b", 5000, "kubernetes"],
      ["shop-worker-1", "worker", 0, 4, "zone-b", 5000, "kubernetes"],
      ["shop-web-2", "web", 1, 4, "zone-b", 5000, "kubernetes"],
    ],
  );
  t.deepEqual(replicas[0]!.startedAt, new Date("2026-12-03T08:00:05Z"), "watch events carry times as text");
  t.is(podReplicas(pods, () => undefined)[0]!.zone, "node-b", "the node's name where nodes have no zone");
});

test("a StatefulSet's pods are numbered by their ordinal, not their age: an rtc replica keeps its number (and hostname) when replaced", (t) => {
  const ofSet = (ordinal: number, created: string) => {
    const made = pod(`shop-sfu-rtc-0123456789-${ordinal}`, { type: "sfu-rtc", ready: true, created });
    made.metadata!.ownerReferences = [{ apiVersion: "apps/v1", kind: "StatefulSet", name: "shop-sfu-rtc-0123456789", uid: "set", controller: true }];
    return made;
  };
  // Pod 0 was replaced last (a rollout goes from the highest ordinal down): the youngest, still replica 0.
  const replicas = podReplicas(
    appPods([ofSet(0, "2026-12-03T08:03:00Z"), ofSet(2, "2026-12-03T08:01:00Z"), ofSet(1, "2026-12-03T08:02:00Z")], "shop"),
    () => "zone-a",
  );
  t.deepEqual(
    replicas.map((replica) => [replica.name, replica.index]),
    [
      ["shop-sfu-rtc-0123456789-2", 2],
      ["shop-sfu-rtc-0123456789-1", 1],
      ["shop-sfu-rtc-0123456789-0", 0],
    ],
  );
});

test("endpoints are the ready addresses of the EndpointSlices (terminating ones left out), rtc types' ready pods, and an empty set for a routable type with none", (t) => {
  const pods = [
    pod("shop-web-1", { ready: true }),
    pod("shop-web-22", { ready: true, deleting: true }),
    pod("shop-sfu-rtc-1", { type: "sfu-rtc", ready: true }),
  ];
  const replicas = podReplicas(pods, () => "zone-a");
  const slice: V1EndpointSlice = {
    addressType: "IPv4",
    metadata: { name: "shop-web-abcde" },
    ports: [{ name: "http", port: 5000, protocol: "TCP" }],
    endpoints: [
      { addresses: ["10.244.1.10"], conditions: { ready: true }, zone: "zone-c", targetRef: { kind: "Pod", name: "shop-web-1" } },
      { addresses: ["10.244.1.11"], conditions: { ready: false, serving: true, terminating: true }, targetRef: { kind: "Pod", name: "shop-web-22" } },
      { addresses: ["10.244.9.9"], conditions: { ready: true }, targetRef: { kind: "Pod", name: "someone-else" } },
    ],
  };
  const replicaSlice: V1EndpointSlice = {
    addressType: "IPv4",
    metadata: { name: "shop-sfu-rtc-0-abcde" },
    ports: [{ name: "rtc", port: 5000, protocol: "TCP" }],
    endpoints: [{ addresses: [replicas[2]!.host], conditions: { ready: true }, zone: "zone-a", targetRef: { kind: "Pod", name: "shop-sfu-rtc-1" } }],
  };
  const sets = appEndpointSets(
    ["web", "admin-web", "worker", "sfu-rtc"],
    new Map([["web", 2]]),
    replicas,
    [slice, replicaSlice],
    new Map([["sfu-rtc", "k3x9q"]]),
  );
  t.deepEqual(
    sets.map((set) => [
      set.processType,
      set.routingClass,
      set.replicas,
      set.endpoints.map((endpoint) => [endpoint.replica, endpoint.host, endpoint.port, endpoint.zone]),
    ]),
    [
      ["web", RoutingClass.WEB, 2, [["shop-web-1", "10.244.1.10", 5000, "zone-c"]]],
      ["admin-web", RoutingClass.WEB, 0, []],
      ["sfu-rtc", RoutingClass.RTC, 0, [["shop-sfu-rtc-1", replicas[2]!.host, 5000, "zone-a"]]],
    ],
  );
  t.deepEqual(
    sets.map((set) => set.rtcRouteToken),
    ["", "", "k3x9q"],
    "an rtc type carries its route token, from which the router makes its per-replica hostnames",
  );
  t.is(sets[2]!.endpoints[0]!.replicaIndex, replicas[2]!.index + 1, "an rtc pod listed by its per-replica Service's slice is one endpoint, with its number");
});
