import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { startTestAllocator, testConfig } from "./support/allocator.js";
import { freePortBlock, signedCredentials, uclient, waitForListening } from "./support/turn-client.js";

async function gatewayEnv(t: Parameters<typeof testConfig>[0], env: Record<string, string>) {
  // Each uclient run holds relay ports until its allocations time out, so every gateway gets plenty.
  const block = await freePortBlock(210);
  return testConfig(t, {
    BERTH_TURN_PORT_RANGE: `${block.first}-${block.first + 3}`,
    BERTH_TURN_RELAY_PORT_RANGE: `${block.first + 10}-${block.last}`,
    BERTH_TURN_RELAY_PORTS_PER_GATEWAY: "100",
    BERTH_TURN_RESTART_BACKOFF_MS: "100",
    ...env,
  });
}

test("each rtc process gets its own coturn: minted credentials allocate, expired, wrong-secret and other processes' credentials do not", async (t) => {
  const config = await gatewayEnv(t, { BERTH_TURN_ALLOWED_PEER_IPS: "127.0.0.1", BERTH_TURN_ROTATION_GRACE_SECONDS: "6" });
  const { client } = await startTestAllocator(t, config);
  const shop = (await client.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 1 })).allocation!.exposure!;
  const blog = (await client.ensureAllocation({ team: "acme", app: "blog", processType: "sfu-rtc", replicas: 1 })).allocation!.exposure!;
  t.true(await waitForListening(shop.port));
  t.true(await waitForListening(blog.port));

  const { credentials } = await client.mintCredentials({ app: "shop", processType: "sfu-rtc", user: "alice", ttlSeconds: 600 });
  const turn = credentials!.iceServers[1]!;
  t.deepEqual(credentials!.iceServers[0]!.urls, [`stun:${shop.turnHostname}:${shop.port}`]);
  t.deepEqual(turn.urls, [`turn:${shop.turnHostname}:${shop.port}?transport=udp`, `turn:${shop.turnHostname}:${shop.port}?transport=tcp`]);
  t.regex(turn.username, /^\d{10}:alice$/);
  const allowed = await uclient(shop.port, turn.username, turn.credential);
  t.true(allowed.ok, allowed.output);

  const secret = (await client.getReplicaEnv({ app: "shop", processType: "sfu-rtc", replica: 1 })).env.TURN_SHARED_SECRET!;
  const expired = signedCredentials(secret, "alice", -30);
  t.false((await uclient(shop.port, expired.username, expired.password)).ok, "expired credentials were accepted");
  const wrong = signedCredentials("not-the-secret", "alice", 600);
  t.false((await uclient(shop.port, wrong.username, wrong.password)).ok, "credentials signed with a wrong secret were accepted");
  const blogTurn = (await client.mintCredentials({ app: "blog", processType: "sfu-rtc", user: "alice" })).credentials!.iceServers[1]!;
  t.false((await uclient(shop.port, blogTurn.username, blogTurn.credential)).ok, "another process's credentials were accepted");
  t.true((await uclient(blog.port, blogTurn.username, blogTurn.credential)).ok);

  // An allocation open across the rotation keeps relaying; credentials minted before still work until grace ends.
  const pid = readFileSync(join(config.dataDir, "turn-allocator", "gateways", "shop-sfu-rtc", "turnserver.pid"), "utf8").trim();
  const longCall = uclient(shop.port, turn.username, turn.credential, { messages: 150, intervalMs: 40 });
  await sleep(1_500);
  const rotated = (await client.rotateSecret({ app: "shop", processType: "sfu-rtc" })).allocation!;
  t.truthy(rotated.previousSecretValidUntil);
  const fresh = (await client.mintCredentials({ app: "shop", processType: "sfu-rtc", user: "bob" })).credentials!.iceServers[1]!;
  t.true((await uclient(shop.port, fresh.username, fresh.credential)).ok, "credentials of the new secret were refused");
  const before = await uclient(shop.port, turn.username, turn.credential);
  t.true(before.ok, `credentials minted before the rotation were refused during grace: ${before.output}`);
  const open = await longCall;
  t.true(open.ok, open.output);
  t.regex(open.output, /Total lost packets 0 /);
  t.is(readFileSync(join(config.dataDir, "turn-allocator", "gateways", "shop-sfu-rtc", "turnserver.pid"), "utf8").trim(), pid, "the gateway was restarted");

  await sleep(Math.max(0, Number(rotated.previousSecretValidUntil!.seconds) * 1000 - Date.now()) + 1_500);
  t.false((await uclient(shop.port, turn.username, turn.credential)).ok, "credentials of the previous secret outlived the grace period");
  t.true((await uclient(shop.port, fresh.username, fresh.credential)).ok);

  // A crashed gateway is restarted.
  process.kill(Number(pid), "SIGKILL");
  t.true(await waitForListening(shop.port, false));
  t.true(await waitForListening(shop.port));
  t.true((await uclient(shop.port, fresh.username, fresh.credential)).ok);

  // Releasing stops the gateway and forgets its secrets.
  await client.releaseAllocation({ app: "shop", processType: "sfu-rtc" });
  t.true(await waitForListening(shop.port, false));
  for (let i = 0; i < 50 && existsSync(join(config.dataDir, "turn-allocator", "gateways", "shop-sfu-rtc")); i++) await sleep(100);
  t.false(existsSync(join(config.dataDir, "turn-allocator", "gateways", "shop-sfu-rtc")));
  t.true((await uclient(blog.port, blogTurn.username, blogTurn.credential)).ok);
});

test("by default a gateway refuses to relay to loopback", async (t) => {
  const { client } = await startTestAllocator(t, await gatewayEnv(t, {}));
  const shop = (await client.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 1 })).allocation!.exposure!;
  t.true(await waitForListening(shop.port));
  const turn = (await client.mintCredentials({ app: "shop", processType: "sfu-rtc" })).credentials!.iceServers[1]!;
  const refused = await uclient(shop.port, turn.username, turn.credential);
  t.false(refused.ok, refused.output);
  // The allocation itself succeeds: what fails is the permission to relay to a loopback peer.
  t.notRegex(refused.output, /Cannot complete Allocation/);
});
