import test from "ava";
import { create } from "@bufbuild/protobuf";
import { RouteSchema, RtcAllocationSchema } from "@berth/proto/type/v1/network";
import { ProcessFormationSchema, RoutingClass, RtcExposureSchema } from "@berth/proto/type/v1/process";
import { joinFormation } from "../src/formation-view.js";

const process = (processType: string, routingClass: RoutingClass, extra = {}) =>
  create(ProcessFormationSchema, { processType, routingClass, replicas: 1, ...extra });
const route = (hostname: string, processType: string, customDomain: boolean, url = customDomain ? `http://${hostname}:8080` : `https://${hostname}:8443`) =>
  create(RouteSchema, { hostname, app: "shop", processType, customDomain, url });

test("web types get the platform URL first, then custom domains sorted, each as the router serves it (none where it gave none); tcp types their internal hostname; workers nothing", (t) => {
  const joined = joinFormation(
    "shop",
    [
      process("web", RoutingClass.WEB),
      process("admin-web", RoutingClass.WEB),
      process("api-tcp", RoutingClass.TCP, { internalPort: 5000 }),
      process("worker", RoutingClass.WORKER),
    ],
    [
      route("zeta.example.com", "web", true),
      route("shop.berth.localhost", "web", false),
      route("alpha.example.com", "web", true),
      route("beta.example.com", "web", true, ""),
      route("shop-admin.berth.localhost", "admin-web", false),
    ],
  );
  const byType = Object.fromEntries(joined.map((p) => [p.processType, p]));
  t.deepEqual(byType.web!.urls, ["https://shop.berth.localhost:8443", "http://alpha.example.com:8080", "http://zeta.example.com:8080"]);
  t.deepEqual(byType.web!.customDomains, ["alpha.example.com", "beta.example.com", "zeta.example.com"]);
  t.deepEqual(byType["admin-web"]!.urls, ["https://shop-admin.berth.localhost:8443"]);
  t.deepEqual(byType["admin-web"]!.customDomains, []);
  t.is(byType["api-tcp"]!.internalHostname, "shop-api-tcp");
  t.is(byType["api-tcp"]!.internalPort, 5000);
  t.deepEqual([byType.worker!.urls, byType.worker!.internalHostname], [[], ""]);
});

test("the scheduler's own internal hostname wins, and the input is left untouched", (t) => {
  const given = process("grpc-tcp", RoutingClass.TCP, { internalHostname: "shop-grpc-tcp.team.svc" });
  const [joined] = joinFormation("shop", [given], []);
  t.is(joined!.internalHostname, "shop-grpc-tcp.team.svc");
  const web = process("web", RoutingClass.WEB);
  joinFormation("shop", [web], [route("shop.berth.localhost", "web", false)]);
  t.deepEqual(web.urls, []);
});

test("rtc types get their TURN gateway and replica hostnames from the allocations", (t) => {
  const exposure = create(RtcExposureSchema, { turnHostname: "abc.turn.berth.localhost", port: 40000, replicaHostnames: ["abc-01.berth.localhost"] });
  const allocations = [create(RtcAllocationSchema, { app: "shop", processType: "sfu-rtc", exposure })];
  const joined = joinFormation("shop", [process("sfu-rtc", RoutingClass.RTC), process("voice-rtc", RoutingClass.RTC)], [], allocations);
  t.deepEqual(joined[0]!.rtc, exposure);
  t.is(joined[1]!.rtc, undefined);
});
