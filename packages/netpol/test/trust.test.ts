import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { eventually } from "@berth/kit/testing";
import { TrustMode } from "@berth/proto/netpol/v1/netpol";
import { createNetpolStore } from "../src/store/netpol-store.js";
import { startNetpolHarness } from "./support/netpol-harness.js";

const apps = {
  "grpc-app": { team: "acme", processes: ["web", "grpc-tcp", "worker"] },
  "api-app": { team: "acme", processes: ["web"] },
  "billing-app": { team: "acme", processes: ["billing-tcp"] },
  portal: { team: "globex", processes: ["web", "admin-tcp"] },
};

const codeOf = async (call: Promise<unknown>) =>
  ConnectError.from(
    await call.then(
      () => undefined,
      (error: unknown) => error,
    ),
  ).code;

test("trust lists are set, added to, removed from, cleared, and survive a restart", async (t) => {
  const h = await startNetpolHarness(t, apps);
  const { client } = h;
  t.deepEqual((await client.getTrust({ app: "grpc-app" })).trust?.trustedApps, []);
  const set = await client.setTrust({ app: "grpc-app", trustedApps: ["billing-app", "api-app", "api-app"], mode: TrustMode.REPLACE });
  t.deepEqual(set.trust?.trustedApps, ["api-app", "billing-app"]);
  t.deepEqual((await client.setTrust({ app: "grpc-app", trustedApps: ["billing-app"], mode: TrustMode.REPLACE })).trust?.trustedApps, ["billing-app"]);
  t.deepEqual((await client.setTrust({ app: "grpc-app", trustedApps: ["api-app"], mode: TrustMode.ADD })).trust?.trustedApps, ["api-app", "billing-app"]);
  t.deepEqual((await client.removeTrust({ app: "grpc-app", trustedApp: "billing-app" })).trust?.trustedApps, ["api-app"]);
  // Directional: grpc-app's list says nothing about api-app's.
  t.deepEqual((await client.getTrust({ app: "api-app" })).trust?.trustedApps, []);
  await h.restart();
  t.deepEqual((await client.getTrust({ app: "grpc-app" })).trust?.trustedApps, ["api-app"]);
  await client.clearTrust({ app: "grpc-app" });
  t.deepEqual((await client.getTrust({ app: "grpc-app" })).trust?.trustedApps, []);
});

test("another team's app and an unknown app are NOT_FOUND alike, and a refused request changes nothing", async (t) => {
  const h = await startNetpolHarness(t, apps);
  const { client } = h;
  await client.setTrust({ app: "grpc-app", trustedApps: ["api-app"], mode: TrustMode.REPLACE });
  const refused = [
    client.setTrust({ app: "grpc-app", trustedApps: ["billing-app", "portal"], mode: TrustMode.REPLACE }),
    client.setTrust({ app: "grpc-app", trustedApps: ["billing-app", "ghost"], mode: TrustMode.ADD }),
    client.setTrust({ app: "ghost", trustedApps: ["api-app"], mode: TrustMode.REPLACE }),
    client.removeTrust({ app: "grpc-app", trustedApp: "portal" }),
    client.getTrust({ app: "ghost" }),
    client.clearTrust({ app: "ghost" }),
  ];
  for (const call of refused) t.is(await codeOf(call), Code.NotFound);
  const messages = await Promise.all([
    client.setTrust({ app: "grpc-app", trustedApps: ["portal"], mode: TrustMode.ADD }).catch((error: unknown) => ConnectError.from(error).rawMessage),
    client.setTrust({ app: "grpc-app", trustedApps: ["ghost"], mode: TrustMode.ADD }).catch((error: unknown) => ConnectError.from(error).rawMessage),
  ]);
  t.deepEqual(messages, ['app "portal" not found', 'app "ghost" not found']);
  t.deepEqual((await client.getTrust({ app: "grpc-app" })).trust?.trustedApps, ["api-app"]);
  t.deepEqual((await client.getTrust({ app: "portal" })).trust?.trustedApps, []);
});

test("malformed names, trusting itself, too many names and a missing mode are INVALID_ARGUMENT naming the field", async (t) => {
  const h = await startNetpolHarness(t, apps);
  const { client } = h;
  const invalid = async (call: Promise<unknown>) =>
    fieldViolationsOf(
      await call.then(
        () => undefined,
        (error: unknown) => error,
      ),
    ).map((violation) => violation.field);
  t.deepEqual(await invalid(client.setTrust({ app: "grpc-app", trustedApps: ["grpc-app", "Bad_Name", ""], mode: TrustMode.REPLACE })), [
    "trusted_apps[0]",
    "trusted_apps[1]",
    "trusted_apps[2]",
  ]);
  const tenThousand = Array.from({ length: 10_000 }, (_, index) => `app-${index}`);
  t.deepEqual(await invalid(client.setTrust({ app: "grpc-app", trustedApps: tenThousand, mode: TrustMode.REPLACE })), ["trusted_apps"]);
  t.deepEqual(await invalid(client.setTrust({ app: "grpc-app", trustedApps: ["api-app"] })), ["mode"]);
  t.deepEqual(await invalid(client.setTrust({ app: "grpc-app", trustedApps: [], mode: TrustMode.ADD })), ["trusted_apps"]);
  t.deepEqual(await invalid(client.getTrust({ app: "-x" })), ["app"]);
  t.deepEqual(await invalid(client.removeTrust({ app: "grpc-app", trustedApp: "x".repeat(64) })), ["trusted_app"]);
  t.deepEqual((await client.getTrust({ app: "grpc-app" })).trust?.trustedApps, []);
});

test("an app so new the stream has not brought it is found through the scheduler", async (t) => {
  const h = await startNetpolHarness(t, apps);
  h.scheduler.dropStreams();
  // Set while no stream is open: only GetApp knows it until the reconnect's snapshot.
  h.scheduler.setApp("fresh-app", { team: "acme", processes: [] });
  t.deepEqual((await h.client.setTrust({ app: "fresh-app", trustedApps: ["api-app"], mode: TrustMode.REPLACE })).trust?.trustedApps, ["api-app"]);
});

test("deleting an app removes it from every trust list in both directions, and a new app of its name inherits nothing", async (t) => {
  const h = await startNetpolHarness(t, apps);
  const { client } = h;
  await client.setTrust({ app: "grpc-app", trustedApps: ["api-app", "billing-app"], mode: TrustMode.REPLACE });
  await client.setTrust({ app: "billing-app", trustedApps: ["api-app"], mode: TrustMode.REPLACE });
  await client.setTrust({ app: "api-app", trustedApps: ["billing-app"], mode: TrustMode.REPLACE });
  await client.forgetApp({ app: "billing-app" });
  await client.forgetApp({ app: "billing-app" });
  t.deepEqual((await client.getTrust({ app: "grpc-app" })).trust?.trustedApps, ["api-app"]);
  t.deepEqual((await client.getTrust({ app: "billing-app" })).trust?.trustedApps, []);
  t.deepEqual((await client.getTrust({ app: "api-app" })).trust?.trustedApps, []);

  await client.setTrust({ app: "api-app", trustedApps: ["grpc-app"], mode: TrustMode.REPLACE });
  h.scheduler.deleteApp("grpc-app");
  await eventually(async () => (await codeOf(client.getTrust({ app: "grpc-app" }))) === Code.NotFound || undefined, "the deleted app NOT_FOUND");
  t.deepEqual((await client.getTrust({ app: "api-app" })).trust?.trustedApps, []);

  await client.setTrust({ app: "api-app", trustedApps: ["billing-app"], mode: TrustMode.REPLACE });
  // Deleted and created again while netpol was not listening: the snapshot shows a newer app of the same name.
  h.scheduler.dropStreams();
  h.scheduler.setApp("billing-app", { team: "acme", processes: ["billing-tcp"], createdAtMs: 9_000 });
  await eventually(async () => (await client.getTrust({ app: "api-app" })).trust?.trustedApps.length === 0 || undefined, "the deleted app off the trust list");
  t.deepEqual((await client.getTrust({ app: "api-app" })).trust?.trustedApps, [], "the new billing-app inherits no trust");

  // What the store holds is what the service answers.
  const stored = await createNetpolStore(h.database).load();
  t.deepEqual(Object.fromEntries(stored.model.trust), Object.fromEntries(h.netpol.state.current().model.trust));
  t.deepEqual([...stored.model.apps.keys()].sort(), [...h.netpol.state.current().model.apps.keys()].sort());
});
