import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { mutatingCalls } from "./support/peer-stand-ins.js";
import { startApiHarness } from "./support/api-harness.js";

async function refusal(t: { throwsAsync(p: Promise<unknown>): Promise<unknown> }, call: Promise<unknown>) {
  const error = ConnectError.from(await t.throwsAsync(call));
  return { code: error.code, fields: fieldViolationsOf(error).map((v) => v.field) };
}

test("malformed requests are refused with INVALID_ARGUMENT naming the field, before any service is called", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  const { apps, formation, domains, teams } = clients;
  const cases: [string, Promise<unknown>, string[]][] = [
    ["app name", apps.createApp({ name: "Bad_Name" }), ["name"]],
    ["request id", apps.createApp({ name: "ok", requestId: "has spaces" }), ["request_id"]],
    ["scale app", formation.scale({ app: "", replicas: { web: 1 } }), ["app"]],
    ["scale nothing", formation.scale({ app: "shop", replicas: {} }), ["replicas"]],
    ["scale type", formation.scale({ app: "shop", replicas: { "Web!": 1 } }), ["replicas[Web!]"]],
    ["resize nothing", formation.resize({ app: "shop", changes: [] }), ["changes"]],
    ["resize memory", formation.resize({ app: "shop", changes: [{ processType: "web", memoryMb: 16 }] }), ["changes[0].memory_mb"]],
    ["resize cpu", formation.resize({ app: "shop", changes: [{ processType: "web", cpuMillis: 10 }] }), ["changes[0].cpu_millis"]],
    ["resize empty", formation.resize({ app: "shop", changes: [{ processType: "web" }] }), ["changes[0].size"]],
    [
      "resize twice",
      formation.resize({
        app: "shop",
        changes: [
          { processType: "web", size: "standard-1x" },
          { processType: "web", size: "standard-2x" },
        ],
      }),
      ["changes[1].process_type"],
    ],
    ["autoscale missing", formation.setAutoscale({ app: "shop" }), ["rule"]],
    [
      "autoscale bounds",
      formation.setAutoscale({ app: "shop", rule: { processType: "web", minReplicas: 0, maxReplicas: 0, targetCpuPercent: 150 } }),
      ["rule.min_replicas", "rule.target_cpu_percent"],
    ],
    [
      "autoscale max<min",
      formation.setAutoscale({ app: "shop", rule: { processType: "web", minReplicas: 3, maxReplicas: 2, targetCpuPercent: 75 } }),
      ["rule.max_replicas"],
    ],
    ["restart type", formation.restartProcess({ app: "shop", processType: "" }), ["process_type"]],
    ["replicas type", formation.listReplicas({ app: "shop", processType: "Web" }), ["process_type"]],
    ["logs tail", formation.streamLogs({ app: "shop", tailLines: 50_000 })[Symbol.asyncIterator]().next(), ["tail_lines"]],
    ["replica", formation.deleteReplica({ app: "shop", replica: "" }), ["replica"]],
    ["config key", apps.updateConfig({ app: "shop", set: { "1BAD": "x" } }), ["set[1BAD]"]],
    ["config reserved", apps.updateConfig({ app: "shop", set: { PORT: "80" }, unset: ["BERTH_APP"] }), ["set[PORT]", "unset[0]"]],
    ["config empty", apps.updateConfig({ app: "shop" }), ["set"]],
    ["config both", apps.updateConfig({ app: "shop", set: { A: "1" }, unset: ["A"] }), ["unset[0]"]],
    ["config value", apps.updateConfig({ app: "shop", set: { BIG: "x".repeat(40_000) } }), ["set[BIG]"]],
    ["deploy artifact", apps.deploy({ app: "shop" }), ["artifact"]],
    ["deploy image", apps.deploy({ app: "shop", artifact: { source: { case: "image", value: "a b" } } }), ["artifact.image"]],
    [
      "deploy procfile",
      apps.deploy({ app: "shop", artifact: { source: { case: "image", value: "shop:1" } }, procfile: "web: run\nworker:\nAdmin: x\nno colon" }),
      ["procfile", "procfile", "procfile"],
    ],
    [
      "deploy unknown upload",
      apps.deploy({ app: "shop", artifact: { source: { case: "sourceUploadId", value: "upload-404" } } }),
      ["artifact.source_upload_id"],
    ],
    [
      "deploy canary",
      apps.deploy({
        app: "shop",
        artifact: { source: { case: "image", value: "shop:1" } },
        canary: { percent: 0, stepPercent: 0, intervalMs: 999, maxFailureRate: 101 },
      }),
      ["canary.percent", "canary.step_percent", "canary.interval_ms", "canary.max_failure_rate"],
    ],
    [
      "deploy canary share",
      apps.deploy({ app: "shop", artifact: { source: { case: "image", value: "shop:1" } }, canary: { percent: 101 } }),
      ["canary.percent"],
    ],
    ["upload size", apps.beginSourceUpload({ app: "shop", sizeBytes: 0n, sha256: "nothex" }), ["size_bytes", "sha256"]],
    ["chunk", apps.uploadSourceChunk({ app: "shop", uploadId: "", data: new Uint8Array() }), ["upload_id", "data"]],
    ["watch", apps.watchRollout({ app: "shop", rolloutId: "" })[Symbol.asyncIterator]().next(), ["rollout_id"]],
    ["release version", apps.getRelease({ app: "shop", version: 0 }), ["version"]],
    ["release version too large", apps.getRelease({ app: "shop", version: 2 ** 31 }), ["version"]],
    ["rollback version too large", apps.rollback({ app: "shop", version: 2 ** 32 - 1 }), ["version"]],
    ["token id with NUL", teams.revokeToken({ id: "tok\u0000en" }), ["id"]],
    ["replica with NUL", formation.deleteReplica({ app: "shop", replica: "shop-web\u0000" }), ["replica"]],
    ["upload id with NUL", apps.uploadSourceChunk({ app: "shop", uploadId: "up\u0000", data: new Uint8Array([1]) }), ["upload_id"]],
    ["rollout id with NUL", apps.watchRollout({ app: "shop", rolloutId: "r\u0000" })[Symbol.asyncIterator]().next(), ["rollout_id"]],
    ["config keys", apps.updateConfig({ app: "shop", set: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`KEY_${i}`, "x"])) }), ["set"]],
    [
      "environment size",
      apps.updateConfig({ app: "shop", set: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`KEY_${i}`, "x".repeat(30_000)])) }),
      ["set"],
    ],
    ["domain host", domains.addDomain({ app: "shop", processType: "web", hostname: "localhost" }), ["hostname"]],
    ["domain host ip", domains.addDomain({ app: "shop", processType: "web", hostname: "10.0.0.1" }), ["hostname"]],
    ["domain process", domains.addDomain({ app: "shop", processType: "worker", hostname: "shop.example.com" }), ["process_type"]],
    ["remove domain", domains.removeDomain({ app: "shop", hostname: "under_score.example.com" }), ["hostname"]],
    ["token description", teams.createToken({ description: "x".repeat(300) }), ["description"]],
  ];
  for (const [name, call, fields] of cases) {
    const result = await refusal(t, call);
    t.deepEqual(result, { code: Code.InvalidArgument, fields }, name);
  }
  t.deepEqual(h.scheduler.log.calls, [], "no malformed request reached the scheduler");
  t.deepEqual(h.router.log.calls, [], "no malformed request reached the router");
});

test("requests naming what the app does not have are refused after reading, without changing anything", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const cases: [string, Promise<unknown>, string[]][] = [
    ["scale unknown type", clients.formation.scale({ app: "shop", replicas: { web: 2, ghost: 1 } }), ["replicas[ghost]"]],
    ["size huge", clients.formation.resize({ app: "shop", changes: [{ processType: "web", size: "huge-9x" }] }), ["changes[0].size"]],
    [
      "autoscale unknown type",
      clients.formation.setAutoscale({ app: "shop", rule: { processType: "ghost", minReplicas: 1, maxReplicas: 2, targetCpuPercent: 50 } }),
      ["rule.process_type"],
    ],
    ["restart unknown type", clients.formation.restartProcess({ app: "shop", processType: "ghost" }), ["process_type"]],
    ["domain unknown type", clients.domains.addDomain({ app: "shop", processType: "api-web", hostname: "api.example.com" }), ["process_type"]],
  ];
  const before = mutatingCalls(h.scheduler.log).length;
  for (const [name, call, fields] of cases) t.deepEqual(await refusal(t, call), { code: Code.InvalidArgument, fields }, name);
  t.deepEqual(mutatingCalls(h.scheduler.log).slice(before), []);
  t.deepEqual(mutatingCalls(h.router.log), []);
  const web = (await clients.formation.getFormation({ app: "shop" })).processes.find((p) => p.processType === "web")!;
  t.is(web.replicas, 1, "the valid part of a refused request was not applied either");
});

test("integers as ProtoJSON does not write them (hex, binary, octal, signed) are refused naming the field, in unary calls and streams", async (t) => {
  const h = await startApiHarness(t);
  const { token, clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const post = async (path: string, body: string | Uint8Array, contentType = "application/json") => {
    const response = await fetch(`${h.api.url}/berth.api.v1.${path}`, {
      method: "POST",
      headers: { "content-type": contentType, authorization: `Bearer ${token}` },
      body,
    });
    return { status: response.status, text: await response.text() };
  };
  const before = mutatingCalls(h.scheduler.log).length;
  for (const replicas of ['"0x3"', '"0b11"', '"0o3"', '"+3"', '"3."']) {
    const answer = await post("FormationService/Scale", `{"app":"shop","replicas":{"web":${replicas}}}`);
    t.is(answer.status, 400, replicas);
    const error = JSON.parse(answer.text) as { code: string; message: string };
    t.is(error.code, "invalid_argument", replicas);
    t.regex(error.message, /^replicas\[web\]: must be a decimal integer/, replicas);
  }
  const version = await post("AppService/GetRelease", '{"app":"shop","version":"0x1"}');
  t.regex(version.text, /"invalid_argument".*version: must be a decimal integer/);
  // A server stream's request travels in an envelope.
  const message = Buffer.from('{"app":"shop","tailLines":"0x10"}');
  const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
  envelope.writeUInt32BE(message.length, 1);
  const logs = await post("FormationService/StreamLogs", envelope, "application/connect+json");
  t.regex(logs.text, /"invalid_argument".*tail_lines: must be a decimal integer/);
  t.deepEqual(mutatingCalls(h.scheduler.log).slice(before), [], "nothing was scaled");

  // What ProtoJSON allows still passes: a number, or a decimal string.
  t.is((await post("FormationService/Scale", '{"app":"shop","replicas":{"web":"2"}}')).status, 200);
  t.is((await post("FormationService/Scale", '{"app":"shop","replicas":{"web":1}}')).status, 200);
});
