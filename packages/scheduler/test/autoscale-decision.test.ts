import test from "ava";
import { recommendReplicas, stabilisedReplicas } from "../src/autoscale-decision.js";

const rule = { minReplicas: 1, maxReplicas: 5, targetCpuPercent: 50 };

const recommendations: [string, number, number, number][] = [
  ["twice the target doubles the replicas", 2, 100, 4],
  ["within 10% of the target nothing changes", 3, 54, 3],
  ["an idle type shrinks to the minimum", 4, 0, 1],
  ["a hot type grows no further than the maximum", 2, 400, 5],
  ["a quarter of the target halves the replicas, rounding up", 4, 12, 1],
];
for (const [name, current, cpu, expected] of recommendations) {
  test(name, (t) => {
    t.is(recommendReplicas({ ...rule, currentReplicas: current, observedCpuPercent: cpu }), expected);
  });
}

const windows = { scaleUpWindowMs: 1000, scaleDownWindowMs: 5000 };

test("a scale-up waits until the whole up-window asks for more, then takes its lowest ask", (t) => {
  t.is(stabilisedReplicas([{ atMs: 500, replicas: 4 }], 2, 1000, windows, 500), undefined);
  t.is(
    stabilisedReplicas(
      [
        { atMs: 0, replicas: 4 },
        { atMs: 500, replicas: 3 },
        { atMs: 1000, replicas: 5 },
      ],
      2,
      1000,
      windows,
      0,
    ),
    3,
  );
  t.is(
    stabilisedReplicas(
      [
        { atMs: 0, replicas: 4 },
        { atMs: 1000, replicas: 2 },
      ],
      2,
      1000,
      windows,
      0,
    ),
    undefined,
  );
});

test("a scale-down goes only as low as the highest ask of the down-window", (t) => {
  const history = [
    { atMs: 0, replicas: 1 },
    { atMs: 2000, replicas: 3 },
    { atMs: 5000, replicas: 1 },
  ];
  t.is(stabilisedReplicas(history, 4, 5000, windows, 0), 3);
  // The history began 2 s ago: too short for the 5 s down-window.
  t.is(
    stabilisedReplicas(
      [
        { atMs: 3000, replicas: 1 },
        { atMs: 5000, replicas: 1 },
      ],
      4,
      5000,
      windows,
      3000,
    ),
    undefined,
  );
  // Entries older than the window were dropped, but the history still began long enough ago.
  t.is(
    stabilisedReplicas(
      [
        { atMs: 4000, replicas: 1 },
        { atMs: 5000, replicas: 2 },
      ],
      4,
      5000,
      windows,
      -2000,
    ),
    2,
  );
});

test("without windows, decisions are immediate; nothing to do is undefined", (t) => {
  const none = { scaleUpWindowMs: 0, scaleDownWindowMs: 0 };
  t.is(stabilisedReplicas([{ atMs: 10, replicas: 3 }], 1, 10, none, 10), 3);
  t.is(stabilisedReplicas([{ atMs: 10, replicas: 1 }], 3, 10, none, 10), 1);
  t.is(stabilisedReplicas([{ atMs: 10, replicas: 2 }], 2, 10, none, 10), undefined);
  t.is(stabilisedReplicas([], 2, 10, none, 10), undefined);
});
