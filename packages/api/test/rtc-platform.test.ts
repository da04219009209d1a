import { resolve } from "node:path";
import test from "ava";
import { RolloutState } from "@berth/proto/type/v1/release";
import { freePortBlock, signedCredentials, tlsPeerCertificate, uclient, waitForListening } from "@berth/turn-allocator/testing";
import { deployDirectory, eventually, followRolloutThroughApi, startPlatformHarness } from "./support/platform-harness.js";

const SFU_DIR = resolve(import.meta.dirname, "../../../examples/sfu");

async function replicaEnv(host: string, port: number): Promise<Record<string, string>> {
  return (await fetch(`http://${host}:${port}/`)).json() as Promise<Record<string, string>>;
}

test("an sfu-rtc process deployed through the API gets its own coturn, TURN variables in every replica, and credentials coturn accepts", async (t) => {
  const block = await freePortBlock(210);
  const h = await startPlatformHarness(t, {
    turnEnv: {
      BERTH_TURN_PORT_RANGE: `${block.first}-${block.first + 3}`,
      BERTH_TURN_RELAY_PORT_RANGE: `${block.first + 10}-${block.last}`,
      BERTH_TURN_RELAY_PORTS_PER_GATEWAY: "100",
      BERTH_TURN_ALLOWED_PEER_IPS: "127.0.0.1",
    },
  });
  const { clients } = await h.team("acme");
  await clients.apps.createApp({ name: "voice" });
  const deployed = await deployDirectory(clients, "voice", { dir: SFU_DIR });
  t.is((await followRolloutThroughApi(clients, "voice", deployed.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  await clients.formation.scale({ app: "voice", replicas: { "sfu-rtc": 2 } });
  const replicas = await eventually(async () => {
    const { replicas } = await clients.formation.listReplicas({ app: "voice", processType: "sfu-rtc" });
    return replicas.length === 2 && replicas.every((replica) => replica.ready) ? replicas : undefined;
  }, "two ready sfu-rtc replicas");

  const { processes } = await clients.formation.getFormation({ app: "voice" });
  const exposure = processes.find((process) => process.processType === "sfu-rtc")!.rtc!;
  t.regex(exposure.turnHostname, /^[a-z][a-z0-9]{9}\.turn\.berth\.localhost$/);
  t.deepEqual(exposure.replicaHostnames, [`${exposure.routeToken}-01.berth.localhost`, `${exposure.routeToken}-02.berth.localhost`]);

  const envs = await Promise.all(replicas.map((replica) => replicaEnv(replica.host, replica.port)));
  const env = envs.find((candidate) => candidate.BERTH_RTC_REPLICA === "01")!;
  t.deepEqual(env, {
    TURN_SHARED_SECRET: env.TURN_SHARED_SECRET,
    TURN_HOSTNAME: exposure.turnHostname,
    TURN_PORT: String(exposure.port),
    TURN_REALM: "berth.localhost",
    BERTH_RTC_PROCESS: "sfu-rtc",
    BERTH_RTC_REPLICA: "01",
    BERTH_RTC_HOSTNAME: exposure.replicaHostnames[0],
  });
  t.regex(env.TURN_SHARED_SECRET!, /^[A-Za-z0-9_-]{43}$/);
  t.deepEqual(envs.map((each) => [each.BERTH_RTC_REPLICA, each.BERTH_RTC_HOSTNAME]).sort(), [
    ["01", exposure.replicaHostnames[0]],
    ["02", exposure.replicaHostnames[1]],
  ]);

  t.true(await waitForListening(exposure.port));
  const turn = (await clients.rtc.getCredentials({ app: "voice", processType: "sfu-rtc", user: "alice" })).credentials!.iceServers[1]!;
  const allocated = await uclient(exposure.port, turn.username, turn.credential);
  t.true(allocated.ok, allocated.output);
  // What the app's own signaling mints with TURN_SHARED_SECRET works too.
  const own = signedCredentials(env.TURN_SHARED_SECRET!, "bob", 600);
  t.true((await uclient(exposure.port, own.username, own.password)).ok);

  // Once the router issued the gateway's certificate, credentials carry turns: on the same port, which coturn serves over TLS.
  const secure = await eventually(async () => {
    const entry = (await clients.rtc.getCredentials({ app: "voice", processType: "sfu-rtc", user: "carol" })).credentials!.iceServers[1]!;
    return entry.urls.length === 3 ? entry : undefined;
  }, "credentials with a turns: URL");
  t.deepEqual(secure.urls, [
    `turn:${exposure.turnHostname}:${exposure.port}?transport=udp`,
    `turn:${exposure.turnHostname}:${exposure.port}?transport=tcp`,
    `turns:${exposure.turnHostname}:${exposure.port}?transport=tcp`,
  ]);
  const presented = await tlsPeerCertificate(exposure.port, exposure.turnHostname, h.router.platformCaPem!);
  t.is(presented.subjectaltname, `DNS:${exposure.turnHostname}`);
  const overTls = await uclient(exposure.port, secure.username, secure.credential, { tls: true });
  t.true(overTls.ok, overTls.output);

  // A rotation rolls the process: the replica sees the new secret, and credentials minted before keep working.
  await clients.rtc.rotateSecret({ app: "voice", processType: "sfu-rtc" });
  const before = new Set(replicas.map((replica) => replica.name));
  const rolled = await eventually(async () => {
    const current = (await clients.formation.listReplicas({ app: "voice", processType: "sfu-rtc" })).replicas;
    if (current.length !== 2 || current.some((replica) => !replica.ready || before.has(replica.name))) return undefined;
    return Promise.all(current.map((replica) => replicaEnv(replica.host, replica.port)));
  }, "the rtc process to roll onto the new secret");
  t.true(rolled.every((each) => each.TURN_SHARED_SECRET !== env.TURN_SHARED_SECRET && each.TURN_SHARED_SECRET === rolled[0]!.TURN_SHARED_SECRET));
  t.true((await uclient(exposure.port, turn.username, turn.credential)).ok, "credentials minted before the rotation were refused");

  // Deleting the app stops its gateway and frees its port.
  await clients.apps.deleteApp({ app: "voice" });
  t.true(await waitForListening(exposure.port, false));
});
