import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import pg from "pg";
import { POSTGRES_URL, startTestAllocator, testConfig, testSchema } from "./support/allocator.js";

/** The relay ranges the store holds, in order: they are not part of any RPC's answer. */
async function relayRanges(schema: string): Promise<{ first: number; last: number }[]> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT relay_first AS first, relay_last AS last FROM "${schema}".allocations ORDER BY relay_first`);
    return rows;
  } finally {
    await client.end();
  }
}

const codeOf = (error: unknown) => ConnectError.from(error).code;

test("100 parallel allocations over two allocator instances on one database never share a port or a relay range", async (t) => {
  const schema = testSchema(t);
  const env = { BERTH_TURN_PORT_RANGE: "41000-41149", BERTH_TURN_RELAY_PORT_RANGE: "50000-51999", BERTH_TURN_RELAY_PORTS_PER_GATEWAY: "10" };
  const one = await startTestAllocator(t, testConfig(t, env, schema), { gateways: false });
  const two = await startTestAllocator(t, testConfig(t, env, schema), { gateways: false });
  const requests = Array.from({ length: 100 }, (_, i) => ({ team: "acme", app: `app${i % 25}`, processType: `p${Math.floor(i / 25)}-rtc`, replicas: 1 }));
  const answers = await Promise.all(requests.map((request, i) => (i % 2 === 0 ? one : two).client.ensureAllocation(request)));
  const ports = answers.map((answer) => answer.allocation!.exposure!.port);
  t.is(new Set(ports).size, 100);
  t.true(ports.every((port) => port >= 41000 && port <= 41149));
  const tokens = answers.map((answer) => answer.allocation!.exposure!.routeToken);
  t.is(new Set(tokens).size, 100);
  t.true(tokens.every((token) => /^[a-z][a-z0-9]{9}$/.test(token)));

  // Asking again, through either instance, changes nothing: the same port and token.
  const again = await Promise.all(requests.map((request, i) => (i % 2 === 0 ? two : one).client.ensureAllocation(request)));
  t.deepEqual(
    again.map((answer) => answer.allocation!.exposure!.port),
    ports,
  );
  t.deepEqual(
    again.map((answer) => answer.allocation!.exposure!.routeToken),
    tokens,
  );
  const relays = await relayRanges(schema);
  t.is(relays.length, 100);
  for (const [index, range] of relays.entries()) {
    t.true(range.first >= 50000 && range.last <= 51999 && range.last - range.first === 9);
    if (index > 0) t.true(range.first > relays[index - 1]!.last, "relay ranges overlap");
  }
  t.deepEqual(await one.client.getPool({}), { $typeName: "berth.turn.v1.GetPoolResponse", firstPort: 41000, lastPort: 41149, size: 150, allocated: 100 });
});

test("an exhausted pool answers RESOURCE_EXHAUSTED with its size and changes nothing; a released port is reused", async (t) => {
  const schema = testSchema(t);
  const { client } = await startTestAllocator(t, testConfig(t, { BERTH_TURN_PORT_RANGE: "41200-41202" }, schema), { gateways: false });
  for (const app of ["a", "b", "c"]) await client.ensureAllocation({ team: "acme", app, processType: "sfu-rtc", replicas: 1 });
  const refused = ConnectError.from(await t.throwsAsync(client.ensureAllocation({ team: "acme", app: "d", processType: "sfu-rtc", replicas: 1 })));
  t.is(refused.code, Code.ResourceExhausted);
  t.regex(refused.rawMessage, /41200-41202 is exhausted: all 3 ports/);
  t.is(codeOf(await t.throwsAsync(client.getAllocation({ app: "d", processType: "sfu-rtc" }))), Code.NotFound);
  t.is((await client.getPool({})).allocated, 3);

  const freed = (await client.getAllocation({ app: "b", processType: "sfu-rtc" })).allocation!.exposure!.port;
  await client.releaseAllocation({ app: "b", processType: "sfu-rtc" });
  t.is((await client.ensureAllocation({ team: "acme", app: "d", processType: "sfu-rtc", replicas: 1 })).allocation!.exposure!.port, freed);
  t.deepEqual(await client.releaseApp({ app: "a" }), { $typeName: "berth.turn.v1.ReleaseAppResponse", releasedPorts: 1 });
  t.deepEqual(
    (await client.listAllocations({})).allocations.map((a) => a.app),
    ["c", "d"],
  );
});

test("shrinking the range keeps every port in use; new allocations come from the new range", async (t) => {
  const schema = testSchema(t);
  const wide = await startTestAllocator(t, testConfig(t, { BERTH_TURN_PORT_RANGE: "41300-41309" }, schema), { gateways: false });
  const kept: number[] = [];
  for (const app of ["a", "b", "c"])
    kept.push((await wide.client.ensureAllocation({ team: "acme", app, processType: "sfu-rtc", replicas: 1 })).allocation!.exposure!.port);
  await wide.server.close(100);
  const narrow = await startTestAllocator(t, testConfig(t, { BERTH_TURN_PORT_RANGE: "41301-41303" }, schema), { gateways: false });
  for (const [index, app] of ["a", "b", "c"].entries()) {
    t.is((await narrow.client.ensureAllocation({ team: "acme", app, processType: "sfu-rtc", replicas: 2 })).allocation!.exposure!.port, kept[index]!);
  }
  t.is((await narrow.client.ensureAllocation({ team: "acme", app: "d", processType: "sfu-rtc", replicas: 1 })).allocation!.exposure!.port, 41303);
  t.is(codeOf(await t.throwsAsync(narrow.client.ensureAllocation({ team: "acme", app: "e", processType: "sfu-rtc", replicas: 1 }))), Code.ResourceExhausted);
});

test("relay ranges run out on their own and say so", async (t) => {
  const { client } = await startTestAllocator(t, testConfig(t, { BERTH_TURN_RELAY_PORT_RANGE: "50000-50019", BERTH_TURN_RELAY_PORTS_PER_GATEWAY: "10" }), {
    gateways: false,
  });
  await client.ensureAllocation({ team: "acme", app: "a", processType: "sfu-rtc", replicas: 1 });
  await client.ensureAllocation({ team: "acme", app: "b", processType: "sfu-rtc", replicas: 1 });
  const refused = ConnectError.from(await t.throwsAsync(client.ensureAllocation({ team: "acme", app: "c", processType: "sfu-rtc", replicas: 1 })));
  t.is(refused.code, Code.ResourceExhausted);
  t.regex(refused.rawMessage, /relay pool 50000-50019 is exhausted: all 2 ranges of 10 ports/);
});

test("names, replica hostnames and the replica environment follow the allocation", async (t) => {
  const { client } = await startTestAllocator(t, testConfig(t, { BERTH_PLATFORM_DOMAIN: "example.test" }), { gateways: false });
  const { allocation } = await client.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 2 });
  const token = allocation!.exposure!.routeToken;
  t.is(allocation!.exposure!.turnHostname, `${token}.turn.example.test`);
  t.deepEqual(allocation!.exposure!.replicaHostnames, [`${token}-01.example.test`, `${token}-02.example.test`]);
  t.is(allocation!.exposure!.realm, "example.test");
  const scaled = await client.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 3 });
  t.deepEqual(scaled.allocation!.exposure!.replicaHostnames.at(-1), `${token}-03.example.test`);

  const { env } = await client.getReplicaEnv({ app: "shop", processType: "sfu-rtc", replica: 2 });
  t.deepEqual(Object.keys(env).sort(), [
    "BERTH_RTC_HOSTNAME",
    "BERTH_RTC_PROCESS",
    "BERTH_RTC_REPLICA",
    "TURN_HOSTNAME",
    "TURN_PORT",
    "TURN_REALM",
    "TURN_SHARED_SECRET",
  ]);
  t.like(env, {
    TURN_HOSTNAME: `${token}.turn.example.test`,
    TURN_PORT: String(allocation!.exposure!.port),
    TURN_REALM: "example.test",
    BERTH_RTC_PROCESS: "sfu-rtc",
    BERTH_RTC_REPLICA: "02",
    BERTH_RTC_HOSTNAME: `${token}-02.example.test`,
  });
  t.regex(env.TURN_SHARED_SECRET!, /^[A-Za-z0-9_-]{43}$/);
  // The secret is never part of what allocations show.
  const shown = JSON.stringify((await client.listAllocations({ app: "shop" })).allocations, (_, value) => (typeof value === "bigint" ? String(value) : value));
  t.false(shown.includes(env.TURN_SHARED_SECRET!));
});

test("bad input is refused with the field named and changes nothing", async (t) => {
  const { client } = await startTestAllocator(t, testConfig(t, {}), { gateways: false });
  await client.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 1 });
  const cases: [Promise<unknown>, Code, string[]][] = [
    [client.ensureAllocation({ team: "acme", app: "Shop!", processType: "web", replicas: 1 }), Code.InvalidArgument, ["app", "process_type"]],
    [client.ensureAllocation({ team: "", app: "x", processType: "x-rtc", replicas: 5000 }), Code.InvalidArgument, ["team", "replicas"]],
    [client.mintCredentials({ app: "shop", processType: "sfu-rtc", ttlSeconds: 10 }), Code.InvalidArgument, ["ttl_seconds"]],
    [client.mintCredentials({ app: "shop", processType: "sfu-rtc", ttlSeconds: 10_000_000, user: "a:b" }), Code.InvalidArgument, ["user", "ttl_seconds"]],
    [client.mintCredentials({ app: "shop", processType: "worker" }), Code.InvalidArgument, ["process_type"]],
    [client.getReplicaEnv({ app: "shop", processType: "sfu-rtc", replica: 0 }), Code.InvalidArgument, ["replica"]],
    [client.mintCredentials({ app: "shop", processType: "other-rtc" }), Code.NotFound, []],
    [client.rotateSecret({ app: "nope", processType: "sfu-rtc" }), Code.NotFound, []],
    [client.getReplicaEnv({ app: "nope", processType: "sfu-rtc", replica: 1 }), Code.NotFound, []],
  ];
  for (const [call, code, fields] of cases) {
    const error = ConnectError.from(await t.throwsAsync(call));
    t.is(error.code, code, error.message);
    t.deepEqual(
      fieldViolationsOf(error).map((v) => v.field),
      fields,
    );
  }
  t.deepEqual(
    (await client.listAllocations({})).allocations.map((a) => `${a.app}/${a.processType}`),
    ["shop/sfu-rtc"],
  );
  t.is((await client.getPool({})).allocated, 1);
});

test("minting is rate-limited per app", async (t) => {
  const { client } = await startTestAllocator(t, testConfig(t, { BERTH_TURN_MINTS_PER_MINUTE: "3" }), { gateways: false });
  await client.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 1 });
  await client.ensureAllocation({ team: "acme", app: "blog", processType: "sfu-rtc", replicas: 1 });
  for (let i = 0; i < 3; i++) await client.mintCredentials({ app: "shop", processType: "sfu-rtc" });
  const refused = ConnectError.from(await t.throwsAsync(client.mintCredentials({ app: "shop", processType: "sfu-rtc" })));
  t.is(refused.code, Code.ResourceExhausted);
  t.regex(refused.rawMessage, /may mint 3 TURN credentials per minute: retry in \d+ s/);
  await t.notThrowsAsync(client.mintCredentials({ app: "blog", processType: "sfu-rtc" }));
});
