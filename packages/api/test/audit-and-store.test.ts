import test from "ava";
import { eventually } from "@berth/kit/testing";
import { openApiStore } from "../src/store/index.js";
import { ensureAdminToken } from "../src/bootstrap-admin.js";
import { isAuditedMethod } from "../src/audit.js";
import { dropSchema, startApiHarness, TEST_DATABASE_URL } from "./support/api-harness.js";
import { hashBearer } from "../src/token-secrets.js";

test("mutating calls are audited with caller, app, request id and outcome; reads are not", async (t) => {
  const h = await startApiHarness(t);
  const { tokenId, clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop", requestId: "req-1" });
  await clients.formation.getFormation({ app: "shop" });
  await t.throwsAsync(clients.formation.scale({ app: "shop", replicas: { ghost: 1 } }));
  const store = await openApiStore({ databaseUrl: TEST_DATABASE_URL, dataDir: "", schema: h.schema });
  t.teardown(() => store.close());
  const events = await store.audit.list({ team: "acme", limit: 10 });
  t.deepEqual(
    events.map((e) => [e.rpc, e.app, e.requestId, e.code, e.tokenId]),
    [
      ["berth.api.v1.FormationService/Scale", "shop", "", "INVALID_ARGUMENT", tokenId],
      ["berth.api.v1.AppService/CreateApp", "shop", "req-1", "OK", tokenId],
    ],
  );
  const adminEvents = await store.audit.list({ limit: 20 });
  t.true(adminEvents.some((e) => e.rpc === "berth.api.v1.TeamService/CreateTeam" && e.team === undefined && e.code === "OK"));
});

test("runs and execs are audited once each, with the outcome when their stream ends, never with the command", async (t) => {
  const h = await startApiHarness(t);
  const { tokenId, clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const command = "echo SECRET_TOKEN=hunter2";
  const drain = async (outputs: AsyncIterable<unknown>) => {
    for await (const _ of outputs);
  };
  await drain(clients.processes.run({ app: "shop", command }));
  await drain(clients.processes.exec({ app: "shop", replica: "shop-web-1", command }));
  await t.throwsAsync(drain(clients.processes.exec({ app: "shop", replica: "shop-web-9", command })));
  const leaving = new AbortController();
  await t.throwsAsync(async () => {
    for await (const _ of clients.processes.run({ app: "shop", command: `sleep 600; ${command}` }, { signal: leaving.signal })) leaving.abort();
  });
  const store = await openApiStore({ databaseUrl: TEST_DATABASE_URL, dataDir: "", schema: h.schema });
  t.teardown(() => store.close());
  const commands = await eventually(async () => {
    const events = (await store.audit.list({ team: "acme", limit: 10 })).filter((e) => e.rpc.startsWith("berth.api.v1.ProcessService/"));
    return events.length === 4 ? events.reverse() : undefined;
  }, "the run the caller left audited");
  t.deepEqual(
    commands.map((e) => [e.rpc, e.app, e.code, e.tokenId]),
    [
      ["berth.api.v1.ProcessService/Run", "shop", "OK", tokenId],
      ["berth.api.v1.ProcessService/Exec", "shop", "OK", tokenId],
      ["berth.api.v1.ProcessService/Exec", "shop", "NOT_FOUND", tokenId],
      ["berth.api.v1.ProcessService/Run", "shop", "CANCELED", tokenId],
    ],
  );
  t.false(
    commands.some((e) => JSON.stringify(e).includes("hunter2")),
    "no entry holds the command",
  );
});

test("which methods are audited", (t) => {
  for (const method of ["CreateApp", "DeleteApp", "Deploy", "Scale", "UpdateConfig", "RevokeToken", "BeginSourceUpload"])
    t.true(isAuditedMethod(method), method);
  for (const method of ["GetFormation", "ListApps", "WatchRollout", "StreamLogs", "WhoAmI", "UploadSourceChunk"]) t.false(isAuditedMethod(method), method);
});

test("an operator token replaces its earlier value on restart", async (t) => {
  const schema = `api_test_operator_${process.pid}`;
  t.teardown(() => dropSchema(schema));
  const store = await openApiStore({ databaseUrl: TEST_DATABASE_URL, dataDir: "", schema });
  t.teardown(() => store.close());
  await ensureAdminToken(store.tokens, "first-operator-token-abcdef");
  await ensureAdminToken(store.tokens, "second-operator-token-abcdef");
  const admins = await store.tokens.listActive(undefined);
  t.is(admins.length, 1);
  t.is(admins[0]!.secretSha256, hashBearer("second-operator-token-abcdef"));
});

test("CORS lets a browser on an allowed origin call with a bearer token", async (t) => {
  const h = await startApiHarness(t);
  const url = `${h.api.url}/berth.api.v1.AppService/ListApps`;
  const preflight = await fetch(url, {
    method: "OPTIONS",
    headers: { origin: "https://console.example.com", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
  });
  t.is(preflight.status, 204);
  t.is(preflight.headers.get("access-control-allow-origin"), "https://console.example.com");
  t.regex(preflight.headers.get("access-control-allow-headers") ?? "", /authorization/i);
  const { token } = await h.team("acme");
  const response = await fetch(url, {
    method: "POST",
    headers: { origin: "https://console.example.com", "content-type": "application/json", authorization: `Bearer ${token}` },
    body: "{}",
  });
  t.is(response.status, 200);
  t.is(response.headers.get("access-control-allow-origin"), "https://console.example.com");
  t.deepEqual(await response.json(), {});
});
