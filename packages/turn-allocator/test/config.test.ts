import test from "ava";
import { ConfigError } from "@berth/kit";
import { readTurnAllocatorConfig } from "../src/config.js";

const base = { BERTH_DATA_DIR: "/tmp/berth-turn-config-test", BERTH_INTERNAL_TOKEN: "a-token-of-16-chars-or-more" };

test("defaults: a 1000-port public pool, relay ranges from a separate pool, one-hour grace", (t) => {
  const config = readTurnAllocatorConfig(base);
  t.deepEqual(config.portRange, { first: 40000, last: 40999 });
  t.deepEqual(config.relayRange, { first: 49152, last: 65535 });
  t.is(config.relayPortsPerGateway, 256);
  t.is(config.rotationGraceSeconds, 3600);
  t.is(config.realm, "berth.localhost");
  t.deepEqual(config.credentialTtl, { defaultSeconds: 3600, minSeconds: 60, maxSeconds: 86400 });
  t.deepEqual(config.gateway.allowedPeerIps, []);
});

test("bad values stop start-up naming the variable", (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ BERTH_TURN_PORT_RANGE: "40000" }, /BERTH_TURN_PORT_RANGE must be "<first>-<last>"/],
    [{ BERTH_TURN_PORT_RANGE: "40010-40000" }, /BERTH_TURN_PORT_RANGE must not end before it starts/],
    [{ BERTH_TURN_PORT_RANGE: "80-90" }, /BERTH_TURN_PORT_RANGE must lie within 1024-65535/],
    [{ BERTH_TURN_PORT_RANGE: "50000-50100" }, /BERTH_TURN_RELAY_PORT_RANGE 49152-65535 overlaps BERTH_TURN_PORT_RANGE 50000-50100/],
    [{ BERTH_TURN_RELAY_PORT_RANGE: "50000-50009", BERTH_TURN_RELAY_PORTS_PER_GATEWAY: "11" }, /BERTH_TURN_RELAY_PORTS_PER_GATEWAY must be at most 10/],
    [{ BERTH_TURN_CREDENTIAL_TTL_SECONDS: "90000" }, /BERTH_TURN_CREDENTIAL_TTL_SECONDS must be at most 86400/],
    [{ BERTH_TURN_ALLOWED_PEER_IPS: "127.0.0.1,localhost" }, /BERTH_TURN_ALLOWED_PEER_IPS must be IPv4 addresses/],
    [{ BERTH_ENGINE: "docker" }, /BERTH_ENGINE must be one of local, kubernetes/],
  ];
  for (const [env, message] of cases) {
    const error = t.throws(() => readTurnAllocatorConfig({ ...base, ...env }), { instanceOf: ConfigError });
    t.regex(error!.message, message);
  }
});
