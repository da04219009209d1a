import test from "ava";
import { openDatabase } from "@berth/kit";
import { MIGRATIONS } from "../src/store/migrations.js";
import { findRequestResponse, pruneRequestIds, saveRequestResponse } from "../src/store/request-ids.js";
import { DATABASE_URL, isolation } from "./support/scheduler-harness.js";

test("request ids remember their fingerprint and are pruned once older than the cut-off", async (t) => {
  const db = await openDatabase({ service: "scheduler", schema: (await isolation(t)).schema, migrations: MIGRATIONS, databaseUrl: DATABASE_URL });
  t.teardown(() => db.close());
  await saveRequestResponse(db, "CreateApp:acme", "old", { fingerprint: "f-old", response: new Uint8Array([1]) });
  await saveRequestResponse(db, "CreateApp:acme", "new", { fingerprint: "f-new", response: new Uint8Array([2]) });
  await db.query("UPDATE request_ids SET created_at = now() - interval '2 days' WHERE request_id = 'old'");
  t.deepEqual(await findRequestResponse(db, "CreateApp:acme", "new"), { fingerprint: "f-new", response: new Uint8Array([2]) });
  t.is(await pruneRequestIds(db, new Date(Date.now() - 24 * 60 * 60 * 1000)), 1);
  t.is(await findRequestResponse(db, "CreateApp:acme", "old"), undefined);
  t.truthy(await findRequestResponse(db, "CreateApp:acme", "new"));
});
