import test from "ava";
import { maxSurgeFor, planRollingUpdate, rollingUpdateDone } from "../src/engine/local/rolling-update.js";
import type { PlannedReplica, TypePlan, TypePlanInput } from "../src/engine/local/rolling-update.js";

const zones = ["zone-a", "zone-b"];
const replica = (name: string, index: number, current: boolean, ready: boolean, zone = "zone-a"): PlannedReplica => ({ name, index, current, ready, zone });

const cases: [string, Omit<TypePlanInput, "zones">, TypePlan][] = [
  [
    "a new type starts every replica at once, spread over both zones",
    { desired: 3, maxSurge: 1, replicas: [] },
    {
      start: [
        { index: 0, zone: "zone-a" },
        { index: 1, zone: "zone-b" },
        { index: 2, zone: "zone-a" },
      ],
      retire: [],
    },
  ],
  [
    "scaling up adds only the missing indexes, in the emptier zone",
    { desired: 3, maxSurge: 1, replicas: [replica("a", 0, true, true, "zone-a")] },
    {
      start: [
        { index: 1, zone: "zone-b" },
        { index: 2, zone: "zone-a" },
      ],
      retire: [],
    },
  ],
  [
    "scaling down retires the highest indexes, not-ready ones first",
    { desired: 1, maxSurge: 1, replicas: [replica("a", 0, true, true), replica("b", 1, true, false), replica("c", 2, true, true)] },
    {
      start: [],
      retire: [
        { name: "b", reason: "scaled-down" },
        { name: "c", reason: "scaled-down" },
      ],
    },
  ],
  [
    "scaling to zero retires everything",
    { desired: 0, maxSurge: 1, replicas: [replica("a", 0, true, true), replica("o", 0, false, true)] },
    {
      start: [],
      retire: [
        { name: "a", reason: "scaled-down" },
        { name: "o", reason: "replaced" },
      ],
    },
  ],
  [
    "a rollout starts within the surge and retires nothing before a new replica is ready",
    { desired: 3, maxSurge: 1, replicas: [replica("o0", 0, false, true), replica("o1", 1, false, true), replica("o2", 2, false, true)] },
    {
      start: [{ index: 0, zone: "zone-a" }],
      retire: [],
    },
  ],
  [
    "a starting replica holds the surge: nothing more happens",
    {
      desired: 3,
      maxSurge: 1,
      replicas: [replica("o0", 0, false, true), replica("o1", 1, false, true), replica("o2", 2, false, true), replica("n0", 0, true, false)],
    },
    {
      start: [],
      retire: [],
    },
  ],
  [
    "a ready new replica retires one old one and the next new one starts in its room",
    {
      desired: 3,
      maxSurge: 1,
      replicas: [replica("o0", 0, false, true), replica("o1", 1, false, true), replica("o2", 2, false, true), replica("n0", 0, true, true)],
    },
    {
      start: [{ index: 1, zone: "zone-b" }],
      retire: [{ name: "o0", reason: "replaced" }],
    },
  ],
  [
    "an old replica that is not ready goes as soon as it is surplus",
    { desired: 2, maxSurge: 1, replicas: [replica("o0", 0, false, false), replica("o1", 1, false, true)] },
    {
      start: [{ index: 0, zone: "zone-a" }],
      retire: [{ name: "o0", reason: "replaced" }],
    },
  ],
  [
    "a rollback retires the failed release's replicas once the old ones serve",
    { desired: 1, maxSurge: 1, replicas: [replica("v1", 0, true, true), replica("v2", 0, false, false)] },
    {
      start: [],
      retire: [{ name: "v2", reason: "replaced" }],
    },
  ],
  [
    "a converged type needs nothing",
    { desired: 2, maxSurge: 1, replicas: [replica("a", 0, true, true), replica("b", 1, true, true, "zone-b")] },
    { start: [], retire: [] },
  ],
];

for (const [name, input, expected] of cases) {
  test(name, (t) => {
    t.deepEqual(planRollingUpdate({ ...input, zones }), expected);
  });
}

test("a whole rolling update of three replicas converges one step at a time, never below three ready", (t) => {
  let replicas: PlannedReplica[] = [0, 1, 2].map((index) => replica(`old${index}`, index, false, true));
  let steps = 0;
  for (; steps < 20; steps += 1) {
    const plan = planRollingUpdate({ desired: 3, maxSurge: maxSurgeFor(3, 25), zones, replicas });
    if (plan.start.length === 0 && plan.retire.length === 0) {
      // Starting replicas become ready between passes.
      if (replicas.every((r) => r.ready)) break;
      replicas = replicas.map((r) => ({ ...r, ready: true }));
      continue;
    }
    replicas = replicas.filter((r) => !plan.retire.some((retired) => retired.name === r.name));
    replicas.push(...plan.start.map((s) => replica(`new${s.index}`, s.index, true, false, s.zone)));
    t.true(replicas.filter((r) => r.ready).length >= 3, `ready count fell at step ${steps}`);
    t.true(replicas.length <= 4, `surge exceeded at step ${steps}`);
  }
  t.true(rollingUpdateDone({ desired: 3, replicas }, 0));
  t.deepEqual(replicas.map((r) => r.name).sort(), ["new0", "new1", "new2"]);
  // Idempotent: planning the converged state again changes nothing.
  t.deepEqual(planRollingUpdate({ desired: 3, maxSurge: 1, zones, replicas }), { start: [], retire: [] });
});

test("the surge is a quarter of the replicas, at least one", (t) => {
  t.is(maxSurgeFor(1, 25), 1);
  t.is(maxSurgeFor(4, 25), 1);
  t.is(maxSurgeFor(10, 25), 3);
});

test("a type with retiring replicas or old ones has not converged", (t) => {
  t.false(rollingUpdateDone({ desired: 1, replicas: [replica("a", 0, true, true)] }, 1));
  t.false(rollingUpdateDone({ desired: 1, replicas: [replica("a", 0, true, true), replica("o", 0, false, true)] }, 0));
  t.false(rollingUpdateDone({ desired: 1, replicas: [replica("a", 0, true, false)] }, 0));
});
