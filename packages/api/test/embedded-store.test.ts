import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { silentLogger } from "@berth/kit";
import { ensureAdminToken } from "../src/bootstrap-admin.js";
import { openApiStore } from "../src/store/index.js";
import { hashBearer } from "../src/token-secrets.js";
import { startApiHarness } from "./support/api-harness.js";

// The API on the embedded PostgreSQL cluster, as `npm start` runs it without DATABASE_URL.

test("on the embedded PostgreSQL, the bootstrap admin token is minted once and survives a restart", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "berth-api-embedded-"));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const first = await openApiStore({ databaseUrl: undefined, dataDir, logger: silentLogger });
  const minted = await ensureAdminToken(first.tokens, undefined);
  t.truthy(minted);
  t.is(await ensureAdminToken(first.tokens, undefined), undefined, "printed once only");
  await first.close();
  const second = await openApiStore({ databaseUrl: undefined, dataDir, logger: silentLogger });
  t.teardown(() => second.close());
  t.is(await ensureAdminToken(second.tokens, undefined), undefined);
  const stored = await second.tokens.listActive(undefined);
  t.is(stored.length, 1);
  t.is(stored[0]!.secretSha256, hashBearer(minted!));
  t.false(JSON.stringify(stored).includes(minted!), "the secret itself is never stored");
});

test("the API answers on the embedded PostgreSQL end to end", async (t) => {
  const h = await startApiHarness(t, { embedded: true });
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  t.deepEqual(
    (await clients.apps.listApps({})).apps.map((a) => a.name),
    ["shop"],
  );
});
