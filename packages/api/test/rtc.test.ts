import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { createCoordination, createInternalClient, fieldViolationsOf, turnPassword } from "@berth/kit";
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

test("once the allocator's stream shows a process, the API mints its credentials itself: the process's secret, the allocator's policy, the shared per-app limit", async (t) => {
  const coordination = createCoordination();
  t.teardown(() => coordination.close());
  let mintCalls = 0;
  const h = await startApiHarness(t, {
    coordination,
    turnEnv: { BERTH_TURN_MINTS_PER_MINUTE: "20", BERTH_TURN_CREDENTIAL_MAX_TTL_SECONDS: "7200" },
    peerInterceptors: [
      (next) => (request) => {
        if (request.method.name === "MintCredentials") mintCalls += 1;
        return next(request);
      },
    ],
  });
  const acme = await h.team("acme");
  await h.createApp(acme.clients, "call");
  const allocator = createInternalClient(TurnAllocatorService, { baseUrl: h.config.peers.turnAllocator, token: INTERNAL_TOKEN });
  await allocator.ensureAllocation({ team: "acme", app: "call", processType: "sfu-rtc", replicas: 1 });
  const secret = (await allocator.getReplicaEnv({ app: "call", processType: "sfu-rtc", replica: 1 })).env.TURN_SHARED_SECRET!;
  const { rtc } = acme.clients;
  const request = { app: "call", processType: "sfu-rtc", user: "alice", ttlSeconds: 3600 };

  // Until the stream shows the new process, the allocator mints for it; then the API does.
  let minted = 0;
  for (let before = -1; before !== mintCalls; minted++) {
    before = mintCalls;
    await rtc.getCredentials(request);
  }
  const before = mintCalls;
  const local = [];
  while (minted < 20) {
    local.push((await rtc.getCredentials(request)).credentials!);
    minted++;
  }
  t.is(mintCalls, before, "no call to the allocator");
  for (const credentials of local) {
    const turn = credentials.iceServers[1]!;
    t.is(turn.credential, turnPassword(secret, turn.username));
    t.is(credentials.ttlSeconds, 3600);
  }
  const limited = ConnectError.from(await t.throwsAsync(rtc.getCredentials(request)));
  t.is(limited.code, Code.ResourceExhausted, "the app's limit covers what both minted");
  const ttl = ConnectError.from(await t.throwsAsync(rtc.getCredentials({ ...request, ttlSeconds: 7201 })));
  t.deepEqual(
    fieldViolationsOf(ttl).map((v) => [v.field, v.description]),
    [["ttl_seconds", "must be between 60 and 7200, got 7201"]],
    "the allocator's bound, checked by the API",
  );
  t.is(mintCalls, before);
});
