import test from "ava";
import { ConfigError } from "@berth/kit";
import { readSchedulerConfig } from "../src/config.js";

const base = { BERTH_DATA_DIR: "/tmp/berth-config-test", BERTH_INTERNAL_TOKEN: "a-token-of-at-least-16-chars" };

test("defaults: local engine on 8081, two zones, Kamal-quick health checks, 30 s drain and grace", (t) => {
  const config = readSchedulerConfig({ ...base, PATH: "/usr/bin", HOME: "/root", SECRET: "not inherited" });
  t.like(config, {
    port: 8081,
    engine: "local",
    schema: "scheduler",
    zones: ["zone-a", "zone-b"],
    drainTimeoutMs: 30_000,
    stopGraceMs: 30_000,
    maxSurgePercent: 25,
  });
  t.like(config.health, { intervalMs: 1000, timeoutMs: 5000, startTimeoutMs: 30_000 });
  t.deepEqual(config.replicaBaseEnv, { PATH: "/usr/bin", HOME: "/root" });
  t.is(config.kubernetes.namespace, "berth-apps");
  t.deepEqual(config.localRuntime, { mode: "auto", subnet: "10.88.0.0/16", netpolUrl: "http://127.0.0.1:8084" });
});

test("every variable is read", (t) => {
  const config = readSchedulerConfig({
    ...base,
    BERTH_SCHEDULER_PORT: "0",
    BERTH_ENGINE: "kubernetes",
    BERTH_SCHEDULER_ZONES: "nbg1,fsn1",
    BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: "5000",
    BERTH_SCHEDULER_AUTOSCALE_DOWN_WINDOW_MS: "60000",
    BERTH_KUBERNETES_NAMESPACE: "apps",
    BERTH_LOCAL_RUNTIME: "process",
    BERTH_LOCAL_SUBNET: "172.30.0.0/20",
  });
  t.like(config.localRuntime, { mode: "process", subnet: "172.30.0.0/20" });
  t.like(config, { port: 0, engine: "kubernetes", zones: ["nbg1", "fsn1"], drainTimeoutMs: 5000 });
  t.is(config.autoscale.scaleDownWindowMs, 60_000);
  t.is(config.kubernetes.namespace, "apps");
});

const refusals: [Record<string, string>, RegExp][] = [
  [{ BERTH_ENGINE: "nomad" }, /BERTH_ENGINE must be one of local, kubernetes/],
  [{ BERTH_SCHEDULER_ZONES: "only-one" }, /BERTH_SCHEDULER_ZONES must be two different zone names/],
  [{ BERTH_SCHEDULER_ZONES: "a,a" }, /BERTH_SCHEDULER_ZONES/],
  [{ BERTH_SCHEDULER_SCHEMA: "Bad-Schema" }, /BERTH_SCHEDULER_SCHEMA/],
  [{ BERTH_SCHEDULER_HEALTH_INTERVAL_MS: "10" }, /BERTH_SCHEDULER_HEALTH_INTERVAL_MS must be at least 100/],
  [{ BERTH_SCHEDULER_MAX_SURGE_PERCENT: "0" }, /BERTH_SCHEDULER_MAX_SURGE_PERCENT/],
  [{ BERTH_LOCAL_RUNTIME: "docker" }, /BERTH_LOCAL_RUNTIME must be runc, process or auto/],
  [{ BERTH_LOCAL_SUBNET: "10.88.0.1/16" }, /BERTH_LOCAL_SUBNET: .*host bits set/],
  [{ BERTH_LOCAL_SUBNET: "fd00::/64" }, /BERTH_LOCAL_SUBNET: .*not an IPv4 subnet/],
];
for (const [env, message] of refusals) {
  test(`refuses ${JSON.stringify(env)} naming the variable`, (t) => {
    const error = t.throws(() => readSchedulerConfig({ ...base, ...env }), { instanceOf: ConfigError });
    t.regex(error!.message, message);
  });
}
