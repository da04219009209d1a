import test from "ava";
import { applyStrategicMergePatch } from "../src/strategic-merge-patch.js";

const podSpec = {
  containers: [
    { name: "web", image: "nginx:1.26", env: [{ name: "A", value: "1" }], ports: [{ containerPort: 80 }] },
    { name: "sidecar", image: "envoy" },
  ],
  finalizers: ["a"],
  args: ["x", "y"],
};

test("lists with a merge key merge element by element", (t) => {
  const patched = applyStrategicMergePatch(podSpec, {
    containers: [
      { name: "web", image: "nginx:1.27", env: [{ name: "B", value: "2" }] },
      { name: "new", image: "busybox" },
    ],
  });
  t.deepEqual(patched, {
    ...podSpec,
    containers: [
      {
        name: "web",
        image: "nginx:1.27",
        env: [
          { name: "A", value: "1" },
          { name: "B", value: "2" },
        ],
        ports: [{ containerPort: 80 }],
      },
      { name: "sidecar", image: "envoy" },
      { name: "new", image: "busybox" },
    ],
  });
});

test("lists without a merge key are replaced; finalizers merge as a set", (t) => {
  t.deepEqual(applyStrategicMergePatch(podSpec, { args: ["z"], finalizers: ["b", "a"] }), { ...podSpec, args: ["z"], finalizers: ["a", "b"] });
});

const patchSpec = (patch: unknown) => applyStrategicMergePatch(podSpec, patch) as typeof podSpec;

test("directives: $patch delete and replace, $deleteFromPrimitiveList, $retainKeys, $setElementOrder", (t) => {
  t.deepEqual(patchSpec({ containers: [{ name: "sidecar", $patch: "delete" }], "$setElementOrder/containers": [{ name: "web" }] }).containers, [
    podSpec.containers[0],
  ]);
  t.deepEqual(patchSpec({ containers: [{ $patch: "replace" }, { name: "only", image: "x" }] }).containers, [{ name: "only", image: "x" }]);
  t.deepEqual(patchSpec({ "$deleteFromPrimitiveList/finalizers": ["a"] }).finalizers, []);
  t.deepEqual(
    applyStrategicMergePatch(
      { strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1 } } },
      { strategy: { $retainKeys: ["type"], type: "Recreate" } },
    ),
    { strategy: { type: "Recreate" } },
  );
  t.deepEqual(applyStrategicMergePatch({ a: { b: 1 }, c: 2 }, { a: { $patch: "delete" }, c: null }), {});
  t.deepEqual(applyStrategicMergePatch({ a: { b: 1, c: 2 } }, { a: { $patch: "replace", d: 3 } }), { a: { d: 3 } });
});
