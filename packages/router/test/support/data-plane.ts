import { silentLogger } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { startDataPlane } from "../../src/proxy/data-plane.js";
import type { DataPlane, DataPlaneOptions } from "../../src/proxy/data-plane.js";
import { createRouteTable } from "../../src/route-table.js";
import type { ProcessEndpointsUpdate, RouteTable } from "../../src/route-table.js";

/** A data plane on loopback with free ports, plus what the tests observe of it. */
export interface TestDataPlane extends DataPlane {
  routes: RouteTable;
  drained: string[];
  /** Replaces the endpoints of one process of app `shop` (or another app). */
  setEndpoints(processType: string, endpoints: { replica: string; host: string; port: number }[], app?: string): void;
}

/** A web process update as the scheduler streams it. */
export function webProcess(app: string, processType: string, endpoints: { replica: string; host: string; port: number }[]): ProcessEndpointsUpdate {
  return { team: "acme", app, processType, routingClass: RoutingClass.WEB, endpoints, removed: false };
}

/** Starts a data plane for tests (HTTP only unless options say otherwise). */
export async function startTestDataPlane(options: Partial<DataPlaneOptions> = {}): Promise<TestDataPlane> {
  const routes = options.routes ?? createRouteTable("berth.localhost");
  const drained: string[] = [];
  const plane = await startDataPlane({
    routes,
    host: "127.0.0.1",
    httpPort: 0,
    redirectHttps: false,
    replicaWaitMs: 30_000,
    drainTimeoutMs: 30_000,
    answerChallenge: async () => undefined,
    onDrained: (replicas) => drained.push(...replicas),
    logger: silentLogger,
    ...options,
  });
  return Object.assign(plane, {
    routes,
    drained,
    setEndpoints(processType: string, endpoints: { replica: string; host: string; port: number }[], app = "shop") {
      plane.applyEndpoints([webProcess(app, processType, endpoints)], false);
    },
  });
}
