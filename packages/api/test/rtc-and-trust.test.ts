import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { startApiHarness } from "./support/api-harness.js";

// netpol here is the real package; what is not built yet answers UNIMPLEMENTED. rtc.test.ts covers the TURN allocator.

test("trust calls are checked and scoped, then answer what netpol answers", async (t) => {
  const h = await startApiHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await h.createApp(acme.clients, "shop");
  await h.createApp(acme.clients, "billing");
  await h.createApp(globex.clients, "portal");
  const { trust } = acme.clients;
  const unimplemented = [trust.explain({ fromApp: "billing", toApp: "shop", toProcessType: "api-tcp" }), trust.getMatrix({})];
  for (const call of unimplemented) t.is(ConnectError.from(await t.throwsAsync(call)).code, Code.Unimplemented);
  t.deepEqual((await trust.addTrust({ app: "shop", trustedApps: ["billing"] })).trust?.trustedApps, ["billing"]);
  t.deepEqual((await trust.getTrust({ app: "shop" })).trust?.trustedApps, ["billing"]);
  t.deepEqual((await trust.removeTrust({ app: "shop", trustedApp: "billing" })).trust?.trustedApps, []);

  const self = ConnectError.from(await t.throwsAsync(trust.addTrust({ app: "shop", trustedApps: ["shop", "Bad"] })));
  t.deepEqual(fieldViolationsOf(self).map((v) => v.field), ["trusted_apps[0]", "trusted_apps[1]"]);

  const notOurs = [
    trust.addTrust({ app: "shop", trustedApps: ["portal"] }),
    trust.explain({ fromApp: "portal", toApp: "shop", toProcessType: "api-tcp" }),
    globex.clients.trust.getTrust({ app: "shop" }),
  ];
  for (const call of notOurs) t.is(ConnectError.from(await t.throwsAsync(call)).code, Code.NotFound);
});
