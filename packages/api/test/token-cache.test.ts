import { randomBytes } from "node:crypto";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { createCoordination, silentLogger } from "@berth/kit";
import { startApi } from "../src/index.js";
import { apiClients, startApiHarness } from "./support/api-harness.js";
import { testRedisUrl } from "@berth/kit/testing";

const REDIS_URL = testRedisUrl;
const LONG_TTL_MS = 10 * 60 * 1000;

async function until(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

test("a token revoked through one API replica is refused by another at once, despite its cache", async (t) => {
  const keyPrefix = `berth-api-test-${randomBytes(4).toString("hex")}:`;
  const coordinationA = createCoordination({ redisUrl: REDIS_URL, keyPrefix });
  const coordinationB = createCoordination({ redisUrl: REDIS_URL, keyPrefix });
  t.teardown(() => coordinationA.close());
  t.teardown(() => coordinationB.close());
  const h = await startApiHarness(t, { coordination: coordinationA, tokenCacheTtlMs: LONG_TTL_MS });
  const replicaB = await startApi(h.config, {
    logger: silentLogger,
    schema: h.schema,
    coordination: coordinationB,
    tokenCacheTtlMs: LONG_TTL_MS,
    announce: () => {},
  });
  t.teardown(() => replicaB.close(500));
  const { token, tokenId, clients } = await h.team("acme");
  const onB = apiClients(replicaB.url, token);
  t.is((await onB.teams.whoAmI({})).token!.id, tokenId, "replica B has now cached the token");
  await clients.teams.revokeToken({ id: tokenId });
  const refusedOnB = await until(async () => {
    try {
      await onB.apps.listApps({});
      return false;
    } catch (error) {
      return ConnectError.from(error).code === Code.Unauthenticated;
    }
  });
  t.true(refusedOnB, "only the announced revocation can explain a refusal within the ten-minute cache");
});

test("the cache never keeps a revoked token on the replica that revoked it", async (t) => {
  const h = await startApiHarness(t, { tokenCacheTtlMs: LONG_TTL_MS });
  const { tokenId, clients } = await h.team("acme");
  await clients.apps.listApps({});
  await h.admin.teams.revokeToken({ id: tokenId });
  t.is(ConnectError.from(await t.throwsAsync(clients.apps.listApps({}))).code, Code.Unauthenticated);
});
