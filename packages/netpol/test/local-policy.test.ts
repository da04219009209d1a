import test from "ava";
import { TrustMode } from "@berth/proto/netpol/v1/netpol";
import type { LocalAllow, WatchLocalPolicyResponse } from "@berth/proto/netpol/v1/netpol";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { startNetpolHarness } from "./support/netpol-harness.js";

const apps = {
  "grpc-app": { team: "acme", processes: ["web", "grpc-tcp", "worker", "release", "sfu-rtc"] },
  "api-app": { team: "acme", processes: ["web", "worker"] },
  "billing-app": { team: "acme", processes: ["billing-tcp"] },
  portal: { team: "globex", processes: ["admin-web", "admin-tcp"] },
};

/** An allow as one readable line: `rule: from -> app/class[/type]`. */
function line(allow: LocalAllow): string {
  const from = allow.from?.kind;
  const source =
    from?.case === "app"
      ? `app ${from.value}`
      : from?.case === "ingress"
        ? "ingress"
        : from?.case === "turnGateway"
          ? `gateway ${from.value.app}/${from.value.processType}`
          : "?";
  return `${allow.rule}: ${source} -> ${allow.toApp}/${RoutingClass[allow.toClass]}${allow.toProcessType ? `/${allow.toProcessType}` : ""}`;
}

test("WatchLocalPolicy sends the whole model on connect and again after every change", async (t) => {
  const h = await startNetpolHarness(t, apps);
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const stream = h.client.watchLocalPolicy({}, { signal: abort.signal, timeoutMs: 0 })[Symbol.asyncIterator]();
  const next = async (): Promise<WatchLocalPolicyResponse> => (await stream.next()).value as WatchLocalPolicyResponse;

  const first = await next();
  t.deepEqual(first.allows.map(line), [
    "api-app.web:ingress: ingress -> api-app/WEB",
    "billing-app.tcp:self: app billing-app -> billing-app/TCP",
    "grpc-app.web:ingress: ingress -> grpc-app/WEB",
    "grpc-app.tcp:self: app grpc-app -> grpc-app/TCP",
    "grpc-app.sfu-rtc:turn-gateway: gateway grpc-app/sfu-rtc -> grpc-app/RTC/sfu-rtc",
    "portal.web:ingress: ingress -> portal/WEB",
    "portal.tcp:self: app portal -> portal/TCP",
  ]);

  await h.client.setTrust({ app: "grpc-app", trustedApps: ["api-app"], mode: TrustMode.REPLACE });
  const second = await next();
  t.true(second.version > first.version);
  t.true(second.allows.map(line).includes("grpc-app.tcp:api-app: app api-app -> grpc-app/TCP"));
  t.is(second.allows.length, first.allows.length + 1);

  // An unchanged list publishes nothing; the next message is the deletion's.
  await h.client.setTrust({ app: "grpc-app", trustedApps: ["api-app"], mode: TrustMode.ADD });
  h.scheduler.deleteApp("api-app");
  const third = await next();
  t.true(third.version > second.version);
  t.false(third.allows.some((allow) => allow.toApp === "api-app" || (allow.from?.kind.case === "app" && allow.from.kind.value === "api-app")));

  // A new connection starts from the current model, with a version that kept growing across a restart.
  abort.abort();
  await h.restart();
  const again = await h.client.watchLocalPolicy({}, { timeoutMs: 5000 })[Symbol.asyncIterator]().next();
  const resumed = again.value as WatchLocalPolicyResponse;
  t.is(resumed.version, third.version);
  t.deepEqual(resumed.allows.map(line), third.allows.map(line));
});
