import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { silentLogger, turnPassword } from "@berth/kit";
import { eventually } from "@berth/kit/testing";
import test from "ava";
import { startTestAllocator, testConfig } from "./support/allocator.js";
import type { GatewaySpec } from "../src/gateway/gateway-spec.js";
import { createLocalGateways } from "../src/gateway/local/local-gateways.js";
import { allocate } from "./support/turn-allocation.js";
import { freePortBlock, signedCredentials, tlsPeerCertificate, uclient, waitForListening } from "./support/turn-client.js";

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

/** The pid of a gateway's turnserver, as it wrote it. */
function gatewayPid(config: { dataDir: string }, gateway: string): string {
  return readFileSync(join(config.dataDir, "turn-allocator", "gateways", gateway, "turnserver.pid"), "utf8").trim();
}

test("each rtc process gets its own coturn: minted credentials allocate, expired, wrong-secret and other processes' credentials do not", async (t) => {
  // A grace period far longer than the checks made during it (each uclient run takes seconds); its end has a test of its own.
  const config = await gatewayEnv(t, { BERTH_TURN_ALLOWED_PEER_IPS: "127.0.0.1", BERTH_TURN_ROTATION_GRACE_SECONDS: "3600" });
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

  // An allocation open across the rotation keeps relaying; credentials minted before still work during grace.
  const pid = gatewayPid(config, "shop-sfu-rtc");
  const longCall = uclient(shop.port, turn.username, turn.credential, { messages: 150, intervalMs: 40 });
  await sleep(1_500);
  const rotated = (await client.rotateSecret({ app: "shop", processType: "sfu-rtc" })).allocation!;
  t.truthy(rotated.previousSecretValidUntil);
  const newSecret = (await client.getReplicaEnv({ app: "shop", processType: "sfu-rtc", replica: 1 })).env.TURN_SHARED_SECRET!;
  t.not(newSecret, secret);
  const fresh = (await client.mintCredentials({ app: "shop", processType: "sfu-rtc", user: "bob" })).credentials!.iceServers[1]!;
  t.is(fresh.credential, turnPassword(newSecret, fresh.username), "credentials minted right after the rotation were signed with the old secret");
  t.true((await uclient(shop.port, fresh.username, fresh.credential)).ok, "credentials of the new secret were refused");
  const before = await uclient(shop.port, turn.username, turn.credential);
  t.true(before.ok, `credentials minted before the rotation were refused during grace: ${before.output}`);
  const open = await longCall;
  t.true(open.ok, open.output);
  t.regex(open.output, /Total lost packets 0 /);
  t.is(gatewayPid(config, "shop-sfu-rtc"), pid, "the gateway was restarted");

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

test("at the end of the grace period the gateway refuses the previous secret by itself, not before, and keeps running", async (t) => {
  const config = await gatewayEnv(t, { BERTH_TURN_ALLOWED_PEER_IPS: "127.0.0.1", BERTH_TURN_ROTATION_GRACE_SECONDS: "2" });
  const { client } = await startTestAllocator(t, config);
  const shop = (await client.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 1 })).allocation!.exposure!;
  t.true(await waitForListening(shop.port));
  const old = (await client.mintCredentials({ app: "shop", processType: "sfu-rtc", user: "alice" })).credentials!.iceServers[1]!;
  const pid = gatewayPid(config, "shop-sfu-rtc");
  const rotated = (await client.rotateSecret({ app: "shop", processType: "sfu-rtc" })).allocation!;
  const graceEnd = timestampDate(rotated.previousSecretValidUntil!).getTime();
  const fresh = (await client.mintCredentials({ app: "shop", processType: "sfu-rtc", user: "bob" })).credentials!.iceServers[1]!;

  // Nothing but the passing of time refuses them: whenever that shows, grace is over.
  const refusedAt = await eventually(
    async () => ((await uclient(shop.port, old.username, old.credential)).ok ? undefined : Date.now()),
    "the previous secret's credentials to be refused",
  );
  t.true(refusedAt >= graceEnd, `refused ${graceEnd - refusedAt} ms before the grace period ended`);
  t.true((await uclient(shop.port, fresh.username, fresh.credential)).ok, "credentials of the new secret were refused");
  t.is(gatewayPid(config, "shop-sfu-rtc"), pid, "the gateway was restarted");
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

/** A self-signed certificate for `hostname`, and its key, in PEM. */
function selfSigned(directory: string, hostname: string): { certificatePem: string; privateKeyPem: string } {
  const [certificateFile, keyFile] = [join(directory, "cert.pem"), join(directory, "key.pem")];
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"].concat([
      "-subj",
      `/CN=${hostname}`,
      "-addext",
      `subjectAltName=DNS:${hostname}`,
      "-keyout",
      keyFile,
      "-out",
      certificateFile,
    ]),
    { stdio: "ignore" },
  );
  return { certificatePem: readFileSync(certificateFile, "utf8"), privateKeyPem: readFileSync(keyFile, "utf8") };
}

test("a renewed certificate is served without restarting the gateway: an allocation made before the renewal still refreshes after it", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "berth-turn-renewal-"));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const gateways = createLocalGateways({
    directory: join(directory, "gateways"),
    listenHost: "127.0.0.1",
    turnserverPath: "turnserver",
    sqlite3Path: "sqlite3",
    allowedPeerIps: [],
    restartBackoffMs: 100,
    maxRestartBackoffMs: 1_000,
    logger: silentLogger,
  });
  t.teardown(() => gateways.close());
  const block = await freePortBlock(20);
  const hostname = "token.turn.example.test";
  const spec: GatewaySpec = {
    name: "shop-sfu-rtc",
    team: "acme",
    app: "shop",
    processType: "sfu-rtc",
    port: block.first,
    relayRange: { first: block.first + 1, last: block.last },
    realm: "example.test",
    secrets: ["the-secret"],
    routeToken: "token",
    tls: selfSigned(directory, hostname),
  };
  await gateways.apply([spec]);
  t.true(await waitForListening(spec.port));
  const first = spec.tls!.certificatePem;
  t.is((await tlsPeerCertificate(spec.port, hostname, first)).fingerprint256, new X509Certificate(first).fingerprint256);

  const credentials = signedCredentials("the-secret", "alice", 600);
  const allocation = await allocate(spec.port, credentials.username, credentials.password);
  t.teardown(() => allocation.close());
  t.is(await allocation.refresh(), 0);

  const renewed = selfSigned(directory, hostname);
  await gateways.apply([{ ...spec, tls: renewed }]);
  const served = await eventually(async () => {
    const presented = await tlsPeerCertificate(spec.port, hostname, renewed.certificatePem).catch(() => undefined);
    return presented?.fingerprint256 === new X509Certificate(renewed.certificatePem).fingerprint256 ? presented : undefined;
  }, "the renewed certificate served");
  t.truthy(served);
  t.is(await allocation.refresh(), 0, "the allocation outlived the renewal (437: the gateway forgot it)");
});
