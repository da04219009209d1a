/**
 * netpol benchmark: the time to compile the policies of 10,000 apps with
 * 50,000 trust edges (target: under 1 s), for Kubernetes (NetworkPolicies)
 * and for one machine (local allows), cold and again after one trust change,
 * against a baseline measured in the same run: copying every app, process
 * and edge into new objects, the least any compiler must do. Then the number of objects one
 * trust change writes on a (fake) API server, for teams of growing size
 * (target: the same for every size).
 *
 *   npx tsx bench/netpol-compile.ts [apps, default 10000] [edges, default 50000]
 */
import { performance } from "node:perf_hooks";
import { createFakeKubeApi } from "@berth/fake-kube-api";
import { routingClassOf } from "@berth/kit";
import { compileTeamPolicies } from "../packages/netpol/src/compile/kubernetes-policies.js";
import { compileLocalPolicy } from "../packages/netpol/src/compile/local-policy.js";
import { createKubernetesPolicyEngine } from "../packages/netpol/src/engine/kubernetes-policy-engine.js";
import { emptyModel, withAppChanges, withTrustList } from "../packages/netpol/src/model-changes.js";
import type { PolicyModel } from "../packages/netpol/src/policy-model.js";
import { teamsOf } from "../packages/netpol/src/policy-model.js";

const APPS = Number(process.argv[2] ?? 10_000);
const EDGES = Number(process.argv[3] ?? 50_000);
const TEAM_SIZE = 100;
const SETTINGS = { namespaceBase: "berth-apps", ingress: { namespace: "ingress-nginx", podLabels: { "app.kubernetes.io/name": "ingress-nginx" } } };

/** `apps` apps in teams of `teamSize`, each with web, api-tcp and worker, and `edges` trust edges spread evenly inside teams. */
function buildModel(apps: number, edges: number, teamSize: number): PolicyModel {
  const names = Array.from({ length: apps }, (_, index) => `app-${index}`);
  const model = withAppChanges(emptyModel(), {
    apps: names.map((name, index) => ({
      name,
      team: `team-${Math.floor(index / teamSize)}`,
      createdAtMs: 1,
      processes: ["api-tcp", "web", "worker"].map((processType) => ({ processType, routingClass: routingClassOf(processType), port: 0 })),
    })),
    deleted: [],
    snapshot: true,
  });
  const perApp = Math.floor(edges / apps);
  const lists = new Map<string, string[]>();
  for (let index = 0; index < apps; index++) {
    const teamStart = Math.floor(index / teamSize) * teamSize;
    const size = Math.min(teamSize, apps - teamStart);
    const trusted: string[] = [];
    for (let step = 1; trusted.length < Math.min(perApp, size - 1); step++) trusted.push(names[teamStart + ((index - teamStart + step) % size)]!);
    lists.set(names[index]!, trusted);
  }
  return { apps: model.apps, trust: lists };
}

/** The median time of `fn` over `runs` runs after one warm-up run; `fn` gets the run's index (-1 for the warm-up). */
function time(label: string, runs: number, fn: (run: number) => unknown): number {
  fn(-1);
  const samples: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    fn(run);
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)]!;
  console.log(`  ${label.padEnd(46)} ${median.toFixed(1).padStart(8)} ms (median of ${runs})`);
  return median;
}

const model = buildModel(APPS, EDGES, TEAM_SIZE);
const edges = [...model.trust.values()].reduce((sum, list) => sum + list.length, 0);
console.log(`netpol compile: ${model.apps.size} apps in ${teamsOf(model).length} teams, ${edges} trust edges`);
let policyCount = 0;
let allowCount = 0;
// The least any compiler must do: visit every app, process and edge once and allocate an object for each.
const baseline = time("baseline: a copy of every app and edge", 5, () =>
  [...model.apps.values()].map((app) => ({
    ...app,
    processes: app.processes.map((process) => ({ ...process })),
    trust: (model.trust.get(app.name) ?? []).map((name) => ({ name })),
  })),
);
// Cold: every run compiles models of their own (new app entries), so nothing compiled for an earlier run is reused.
const RUNS = 5;
const coldModels = (count: number) => Array.from({ length: count + 1 }, () => buildModel(APPS, EDGES, TEAM_SIZE));
const compileKubernetes = (current: PolicyModel) => teamsOf(current).reduce((sum, team) => sum + compileTeamPolicies(current, team, SETTINGS).length, 0);
const forKubernetes = coldModels(RUNS);
const kubernetes = time("kubernetes: NetworkPolicies of every team", RUNS, (run) => {
  policyCount = compileKubernetes(forKubernetes[run + 1]!);
});
const forLocal = coldModels(RUNS);
const local = time("local: allows for one machine", RUNS, (run) => {
  allowCount = compileLocalPolicy(forLocal[run + 1]!).length;
});
// After one trust change: the model shares every other app's entry and list with the one before, compiled already.
compileKubernetes(model);
compileLocalPolicy(model);
const changedModels = Array.from({ length: RUNS + 1 }, (_, run) => withTrustList(model, `app-${run}`, [`app-${run + 50}`]));
const incremental = time("both, again after one trust change", RUNS, (run) => {
  compileKubernetes(changedModels[run + 1]!);
  compileLocalPolicy(changedModels[run + 1]!);
});
console.log(`  ${policyCount} NetworkPolicies (${(policyCount / model.apps.size).toFixed(2)} per app, edges do not add objects), ${allowCount} local allows`);
console.log(
  `  kubernetes ${(kubernetes / baseline).toFixed(1)}x baseline, local ${(local / baseline).toFixed(1)}x baseline, after a change ${(incremental / baseline).toFixed(1)}x baseline; target under 1000 ms: ${kubernetes < 1000 && local < 1000 ? "met" : "MISSED"}`,
);

console.log("\nobjects written by one trust change, on the fake API server:");
const api = await createFakeKubeApi();
try {
  const engine = createKubernetesPolicyEngine({ kubeConfig: api.kubeConfig() }, SETTINGS);
  for (const teamSize of [10, 100, 1000]) {
    const team = buildModel(teamSize, teamSize * 5, teamSize);
    const first = await engine.plan("team-0", compileTeamPolicies(team, "team-0", SETTINGS), false);
    const changed = withTrustList(
      team,
      "app-1",
      [...(team.trust.get("app-1") ?? []), `app-${teamSize - 1}`].filter((name) => name !== "app-1"),
    );
    const writesBefore = api.requests.filter((request) => request.verb === "apply" || request.verb === "delete").length;
    const start = performance.now();
    const plan = await engine.plan("team-0", compileTeamPolicies(changed, "team-0", SETTINGS), false);
    const elapsed = performance.now() - start;
    const writes = api.requests.filter((request) => request.verb === "apply" || request.verb === "delete").length - writesBefore;
    console.log(
      `  team of ${String(teamSize).padStart(4)} apps (${first.touched} objects): ${plan.touched} object touched, ${writes} write request(s), ${elapsed.toFixed(0)} ms to plan and apply`,
    );
    await engine.plan("team-0", [], false);
  }
} finally {
  await api.close();
}
