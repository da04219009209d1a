import { once } from "node:events";
import * as https from "node:https";
import type * as net from "node:net";
import { resolve } from "node:path";
import test from "ava";
import { createInternalClient } from "@berth/kit";
import { RouterService } from "@berth/proto/router/v1/router";
import { CertificateState } from "@berth/proto/type/v1/network";
import { RolloutState } from "@berth/proto/type/v1/release";
import { echo, httpsGet } from "@berth/router/testing";
import { INTERNAL_TOKEN, deployDirectory, eventually, followRolloutThroughApi, startPlatformHarness } from "./support/platform-harness.js";

const SFU_DIR = resolve(import.meta.dirname, "../../../examples/sfu");

/** Opens the stand-in SFU's signaling WebSocket through the router's HTTPS port; the handshake names the replica. */
async function openSignaling(port: number, servername: string, ca: string): Promise<{ socket: net.Socket; replica: string }> {
  const request = https.request({
    host: "127.0.0.1",
    port,
    path: "/signaling",
    servername,
    ca,
    agent: false,
    headers: { host: servername, connection: "Upgrade", upgrade: "websocket" },
  });
  request.end();
  const [response, socket] = (await once(request, "upgrade")) as [{ headers: Record<string, string> }, net.Socket];
  return { socket, replica: response.headers["x-berth-rtc-replica"] ?? "" };
}

/** The status of GET / at `servername`, accepting whichever certificate the platform CA signed. */
async function statusIgnoringName(port: number, servername: string, ca: string): Promise<number> {
  const request = https.get({ host: "127.0.0.1", port, servername, ca, agent: false, headers: { host: servername }, checkServerIdentity: () => undefined });
  const [response] = (await once(request, "response")) as [{ statusCode?: number; resume(): void }];
  response.resume();
  return response.statusCode ?? 0;
}

test("each per-replica hostname of an rtc process reaches exactly its replica through the router, over HTTPS and WebSocket, and follows the scale", async (t) => {
  const h = await startPlatformHarness(t);
  const { clients } = await h.team("acme");
  await clients.apps.createApp({ name: "call" });
  const deployed = await deployDirectory(clients, "call", { dir: SFU_DIR });
  t.is((await followRolloutThroughApi(clients, "call", deployed.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  await clients.formation.scale({ app: "call", replicas: { "sfu-rtc": 2 } });
  const { processes } = await clients.formation.getFormation({ app: "call" });
  const [first, second] = processes.find((process) => process.processType === "sfu-rtc")!.rtc!.replicaHostnames;
  t.truthy(first && second);

  const ca = h.router.platformCaPem!;
  const port = h.router.proxyHttpsPort;
  const replicaAt = async (hostname: string) => {
    const response = await httpsGet(port, hostname, ca).catch(() => undefined);
    return response?.status === 200 ? (JSON.parse(response.body) as Record<string, string>) : undefined;
  };
  // Replica 02 starts after the scale: wait until both hostnames answer with a certificate of their own.
  const env02 = await eventually(() => replicaAt(second!), `${second} to be served`);
  const env01 = (await replicaAt(first!))!;
  t.is(env01.BERTH_RTC_REPLICA, "01");
  t.is(env01.BERTH_RTC_HOSTNAME, first);
  t.is(env02.BERTH_RTC_REPLICA, "02");
  t.is(env02.BERTH_RTC_HOSTNAME, second);
  // Never balanced: every request to a replica's hostname lands on that replica.
  for (let round = 0; round < 10; round++) {
    t.is((await replicaAt(first!))?.BERTH_RTC_REPLICA, "01");
    t.is((await replicaAt(second!))?.BERTH_RTC_REPLICA, "02");
  }

  const signaling = await openSignaling(port, second!, ca);
  t.teardown(() => signaling.socket.destroy());
  t.is(signaling.replica, "02");
  t.is(await echo(signaling.socket, "offer"), "offer");
  const toFirst = await openSignaling(port, first!, ca);
  toFirst.socket.destroy();
  t.is(toFirst.replica, "01");

  const router = createInternalClient(RouterService, { baseUrl: h.router.url, token: INTERNAL_TOKEN });
  const routed = async () =>
    (await router.listRoutes({ app: "call" })).routes.map((route) => [route.hostname, route.processType, route.certificate?.state, route.healthyEndpoints]);
  t.deepEqual(await routed(), [
    [first, "sfu-rtc", CertificateState.ISSUED, 1],
    [second, "sfu-rtc", CertificateState.ISSUED, 1],
  ]);

  // Scaling to one replica takes -02 away (route and certificate); -01 keeps its replica.
  await clients.formation.scale({ app: "call", replicas: { "sfu-rtc": 1 } });
  // Its certificate goes with the route: ask past the name check, to see that the router knows the host no more.
  await eventually(async () => ((await statusIgnoringName(port, second!, ca)) === 404 ? true : undefined), `${second} to be no longer routed`);
  t.is((await replicaAt(first!))?.BERTH_RTC_REPLICA, "01");
  // The stored routes follow the proxy's table in the same endpoint generation.
  await eventually(async () => ((await routed()).length === 1 ? true : undefined), "the route of -02 to be removed");
  t.deepEqual(await routed(), [[first, "sfu-rtc", CertificateState.ISSUED, 1]]);
});
