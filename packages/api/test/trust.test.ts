import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { startApiHarness } from "./support/api-harness.js";

// netpol here is the real package, behind a stand-in scheduler whose apps have no processes;
// test/netpol-trust.test.ts covers Explain and the matrix on the whole platform. rtc.test.ts covers the TURN allocator.

test("trust calls are checked and scoped, then answer what netpol answers", async (t) => {
  const h = await startApiHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await h.createApp(acme.clients, "shop");
  await h.createApp(acme.clients, "billing");
  await h.createApp(acme.clients, "search");
  await h.createApp(globex.clients, "portal");
  const { trust } = acme.clients;
  t.deepEqual((await trust.setTrust({ app: "shop", trustedApps: ["billing", "search"] })).trust?.trustedApps, ["billing", "search"]);
  t.deepEqual((await trust.setTrust({ app: "shop", trustedApps: ["search"] })).trust?.trustedApps, ["search"]);
  t.deepEqual((await trust.addTrust({ app: "shop", trustedApps: ["billing"] })).trust?.trustedApps, ["billing", "search"]);
  t.deepEqual((await trust.getTrust({ app: "shop" })).trust?.trustedApps, ["billing", "search"]);
  t.deepEqual((await trust.removeTrust({ app: "shop", trustedApp: "billing" })).trust?.trustedApps, ["search"]);
  await trust.clearTrust({ app: "shop" });
  t.deepEqual((await trust.getTrust({ app: "shop" })).trust?.trustedApps, []);

  const self = ConnectError.from(await t.throwsAsync(trust.addTrust({ app: "shop", trustedApps: ["shop", "Bad"] })));
  t.deepEqual(
    fieldViolationsOf(self).map((v) => v.field),
    ["trusted_apps[0]", "trusted_apps[1]"],
  );
  const many = ConnectError.from(await t.throwsAsync(trust.setTrust({ app: "shop", trustedApps: Array.from({ length: 10_000 }, (_, i) => `app-${i}`) })));
  t.deepEqual(
    fieldViolationsOf(many).map((v) => v.field),
    ["trusted_apps"],
  );

  const notOurs = [
    trust.addTrust({ app: "shop", trustedApps: ["portal"] }),
    trust.setTrust({ app: "shop", trustedApps: ["billing", "ghost"] }),
    trust.removeTrust({ app: "shop", trustedApp: "portal" }),
    trust.explain({ fromApp: "portal", toApp: "shop", toProcessType: "api-tcp" }),
    globex.clients.trust.getTrust({ app: "shop" }),
    globex.clients.trust.setTrust({ app: "portal", trustedApps: ["shop"] }),
  ];
  for (const call of notOurs) t.is(ConnectError.from(await t.throwsAsync(call)).code, Code.NotFound);
  t.deepEqual((await trust.getTrust({ app: "shop" })).trust?.trustedApps, [], "a refused request changes nothing");
  t.deepEqual((await globex.clients.trust.getTrust({ app: "portal" })).trust?.trustedApps, []);
});
