import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { createInternalClient, fieldViolationsOf } from "@berth/kit";
import { TurnAllocatorService } from "@berth/proto/turn/v1/turn";
import { INTERNAL_TOKEN, startApiHarness } from "./support/api-harness.js";

// The TURN allocator here is the real package (without gateways); its own tests run coturn.

test("rtc calls mint, list and rotate through the TURN allocator for the team's own apps only", async (t) => {
  const h = await startApiHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await h.createApp(acme.clients, "shop");
  await h.createApp(globex.clients, "portal");
  const allocator = createInternalClient(TurnAllocatorService, { baseUrl: h.config.peers.turnAllocator, token: INTERNAL_TOKEN });
  const shop = (await allocator.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 2 })).allocation!;
  await allocator.ensureAllocation({ team: "globex", app: "portal", processType: "sfu-rtc", replicas: 1 });
  const { rtc } = acme.clients;

  const { credentials } = await rtc.getCredentials({ app: "shop", processType: "sfu-rtc", user: "alice", ttlSeconds: 600 });
  t.is(credentials!.ttlSeconds, 600);
  t.regex(credentials!.iceServers[1]!.username, /^\d+:alice$/);
  t.true(credentials!.iceServers[1]!.urls.every((url) => url.startsWith(`turn:${shop.exposure!.turnHostname}:${shop.exposure!.port}?`)));
  t.deepEqual(
    (await rtc.listAllocations({ app: "shop" })).allocations.map((a) => a.exposure!.replicaHostnames.length),
    [2],
  );
  const rotated = (await rtc.rotateSecret({ app: "shop", processType: "sfu-rtc" })).allocation!;
  t.truthy(rotated.previousSecretValidUntil);

  const invalid = ConnectError.from(await t.throwsAsync(rtc.getCredentials({ app: "shop", processType: "web" })));
  t.deepEqual(
    fieldViolationsOf(invalid).map((v) => v.field),
    ["process_type"],
  );
  const ttl = ConnectError.from(await t.throwsAsync(rtc.getCredentials({ app: "shop", processType: "sfu-rtc", ttlSeconds: 10_000_000 })));
  t.is(ttl.code, Code.InvalidArgument);
  t.deepEqual(
    fieldViolationsOf(ttl).map((v) => v.field),
    ["ttl_seconds"],
  );
  t.is(ConnectError.from(await t.throwsAsync(rtc.getCredentials({ app: "shop", processType: "other-rtc" }))).code, Code.NotFound);
  for (const call of [
    rtc.getCredentials({ app: "portal", processType: "sfu-rtc" }),
    rtc.listAllocations({ app: "portal" }),
    rtc.rotateSecret({ app: "portal", processType: "sfu-rtc" }),
  ]) {
    t.is(ConnectError.from(await t.throwsAsync(call)).code, Code.NotFound);
  }
});
