import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@berth/proto/grpc/health/v1/health";
import { postWithoutEnd } from "../../../test/support/unfinished-post.js";
import { apiClients, startApiHarness } from "./support/api-harness.js";

const codeOf = (error: unknown) => ConnectError.from(error).code;

test("every public RPC needs a bearer token; health stays open", async (t) => {
  const h = await startApiHarness(t);
  const anonymous = apiClients(h.api.url, undefined);
  t.is(codeOf(await t.throwsAsync(anonymous.apps.listApps({}))), Code.Unauthenticated);
  t.is(codeOf(await t.throwsAsync(anonymous.teams.whoAmI({}))), Code.Unauthenticated);
  t.is(codeOf(await t.throwsAsync(anonymous.formation.listPodSizes({}))), Code.Unauthenticated);
  const health = createClient(Health, createGrpcTransport({ baseUrl: h.api.url }));
  t.is((await health.check({ service: "berth.api.v1.AppService" })).status, Status.SERVING);
  t.deepEqual(h.scheduler.log.calls, [], "no peer is called for an anonymous caller");
});

test("an unknown or malformed token is UNAUTHENTICATED", async (t) => {
  const h = await startApiHarness(t);
  const { token } = await h.team("acme");
  const tampered = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");
  for (const bad of [tampered, `berth_0000000000000000_${"x".repeat(43)}`, "not-a-token"]) {
    t.is(codeOf(await t.throwsAsync(apiClients(h.api.url, bad).apps.listApps({}))), Code.Unauthenticated, bad);
  }
});

test("a bad token is refused before the body is read; a team's oversized message is RESOURCE_EXHAUSTED", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  const refused = await postWithoutEnd(
    `${h.api.url}/berth.api.v1.AppService/CreateApp`,
    { "content-type": "application/json", authorization: `Bearer berth_0000000000000000_${"x".repeat(43)}` },
    `{"name":"${"a".repeat(64 * 1024)}`,
  );
  t.is(refused.status, 401);
  t.is(JSON.parse(refused.body).code, "unauthenticated");
  t.is(codeOf(await t.throwsAsync(clients.apps.createApp({ name: "a".repeat(5 * 1024 * 1024) }))), Code.ResourceExhausted);
  t.deepEqual(h.scheduler.log.calls, []);
});

test("a revoked token stops working at once", async (t) => {
  const h = await startApiHarness(t);
  const { token, tokenId, clients } = await h.team("acme");
  t.deepEqual((await clients.apps.listApps({})).apps, []);
  await clients.teams.revokeToken({ id: tokenId });
  t.is(codeOf(await t.throwsAsync(clients.apps.listApps({}))), Code.Unauthenticated);
  t.is(codeOf(await t.throwsAsync(apiClients(h.api.url, token).teams.whoAmI({}))), Code.Unauthenticated);
});

test("admin-only RPCs refuse team tokens with PERMISSION_DENIED, and admin tokens cannot act on apps", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  t.is(codeOf(await t.throwsAsync(clients.teams.createTeam({ name: "rogue" }))), Code.PermissionDenied);
  t.is(codeOf(await t.throwsAsync(clients.teams.listTeams({}))), Code.PermissionDenied);
  t.is(codeOf(await t.throwsAsync(clients.teams.createToken({ team: "other" }))), Code.PermissionDenied);
  t.is(codeOf(await t.throwsAsync(h.admin.apps.createApp({ name: "by-admin" }))), Code.PermissionDenied);
  t.deepEqual(
    (await h.admin.teams.listTeams({})).teams.map((team) => team.name),
    ["acme"],
  );
  t.deepEqual(h.scheduler.log.calls, []);
});

test("WhoAmI names the token's team; a team lists and mints only its own tokens", async (t) => {
  const h = await startApiHarness(t);
  const acme = await h.team("acme");
  await h.team("globex");
  const me = (await acme.clients.teams.whoAmI({})).token!;
  t.is(me.team, "acme");
  t.false(me.admin);
  const minted = await acme.clients.teams.createToken({ description: "ci" });
  t.is(minted.token!.team, "acme");
  t.regex(minted.secret, /^berth_[0-9a-f]{16}_/);
  const listed = (await acme.clients.teams.listTokens({})).tokens;
  t.deepEqual(listed.map((token) => token.description).sort(), ["acme test token", "ci"]);
  t.is(codeOf(await t.throwsAsync(acme.clients.teams.listTokens({ team: "globex" }))), Code.PermissionDenied);
  const globexTokens = (await h.admin.teams.listTokens({ team: "globex" })).tokens;
  t.is(codeOf(await t.throwsAsync(acme.clients.teams.revokeToken({ id: globexTokens[0]!.id }))), Code.NotFound);
});

test("the last admin token cannot be revoked", async (t) => {
  const h = await startApiHarness(t);
  const self = (await h.admin.teams.whoAmI({})).token!;
  t.true(self.admin);
  t.is(codeOf(await t.throwsAsync(h.admin.teams.revokeToken({ id: self.id }))), Code.FailedPrecondition);
  const second = await h.admin.teams.createToken({ description: "second admin" });
  t.true(second.token!.admin);
  await h.admin.teams.revokeToken({ id: self.id });
  t.is(codeOf(await t.throwsAsync(h.admin.teams.listTeams({}))), Code.Unauthenticated);
  t.deepEqual((await apiClients(h.api.url, second.secret).teams.listTeams({})).teams, []);
});

test("two admin tokens revoking each other at once leave one admin (PostgreSQL)", async (t) => {
  const h = await startApiHarness(t);
  let admin = h.admin;
  for (let round = 0; round < 3; round++) {
    const first = await admin.teams.createToken({ description: `first ${round}` });
    const second = await admin.teams.createToken({ description: `second ${round}` });
    await admin.teams.revokeToken({ id: (await admin.teams.whoAmI({})).token!.id });
    const outcomes = await Promise.allSettled([
      apiClients(h.api.url, first.secret).teams.revokeToken({ id: second.token!.id }),
      apiClients(h.api.url, second.secret).teams.revokeToken({ id: first.token!.id }),
    ]);
    t.is(outcomes.filter((outcome) => outcome.status === "fulfilled").length, 1, `round ${round}`);
    admin = apiClients(h.api.url, outcomes[0]!.status === "fulfilled" ? first.secret : second.secret);
    t.is((await admin.teams.listTokens({})).tokens.length, 1, `round ${round}: one admin left`);
  }
});

test("an operator-provided admin token works without being minted", async (t) => {
  const adminToken = "operator-chosen-admin-token-1234";
  const h = await startApiHarness(t, { adminToken });
  t.is(h.api.bootstrapAdminToken, undefined);
  const me = (await apiClients(h.api.url, adminToken).teams.whoAmI({})).token!;
  t.true(me.admin);
});
