import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { observeCall } from "./call-outcome.js";
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";

/** Per-RPC Prometheus metrics of one server, exposed at /metrics. */
export interface RpcMetrics {
  readonly registry: Registry;
  readonly interceptor: Interceptor;
}

/** Creates a registry with process metrics and per-RPC counts, codes and latency. */
export function createRpcMetrics(serviceName: string): RpcMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ berth_service: serviceName });
  collectDefaultMetrics({ register: registry });
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "RPCs completed on the server, by method and code.",
    labelNames: ["grpc_service", "grpc_method", "grpc_code"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Time from the start of an RPC to its end on the server.",
    labelNames: ["grpc_service", "grpc_method"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  // Label sets are made once per method and code, not on every call.
  const labelSets = new WeakMap<object, { method: Record<string, string>; byCode: Map<string, Record<string, string>> }>();
  const labelsOf = (service: string, method: { name: string }) => {
    let sets = labelSets.get(method);
    if (!sets) labelSets.set(method, (sets = { method: { grpc_service: service, grpc_method: method.name }, byCode: new Map() }));
    return sets;
  };
  const interceptor: Interceptor = (next) => async (request) => {
    const labels = labelsOf(request.service.typeName, request.method);
    const stop = latency.startTimer(labels.method);
    const finish = (error?: unknown) => {
      stop();
      const code = error === undefined ? "OK" : Code[ConnectError.from(error).code];
      let handledLabels = labels.byCode.get(code);
      if (!handledLabels) labels.byCode.set(code, (handledLabels = { ...labels.method, grpc_code: code }));
      handled.inc(handledLabels);
    };
    return observeCall(() => next(request), { ended: finish });
  };
  return { registry, interceptor };
}
