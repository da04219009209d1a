// Thousands of malformed requests over every public method, from a fixed
// seed: none may answer UNKNOWN or INTERNAL, and none may change anything.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { ScalarType, create, toBinary } from "@bufbuild/protobuf";
import type { DescField, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Transport } from "@connectrpc/connect";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService } from "@berth/proto/api/v1/formation";
import { TeamService } from "@berth/proto/api/v1/identity";
import { DomainService, RtcService, TrustService } from "@berth/proto/api/v1/network";
import { ProcessService } from "@berth/proto/api/v1/processes";
import { RolloutState } from "@berth/proto/type/v1/release";
import { startPlatformProcesses } from "./support/platform.js";
import { browserLikeTransport, deployDirectory, publicApi } from "./support/public-api.js";
import type { PublicApi } from "./support/public-api.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const demo = join(root, "examples/demo");
const ADMIN_TOKEN = "fuzz-admin-token-0123456789abcdef";
const SEED = 20261202;
const REQUESTS_PER_METHOD = 60;
const SERVICES: DescService[] = [TeamService, AppService, FormationService, ProcessService, DomainService, RtcService, TrustService];

/** mulberry32: small, fast, and the same sequence for the same seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A string no field may take: always a NUL byte, around other hostile text. */
function hostileString(next: () => number): string {
  const pieces = ["", "shop", "../../etc/passwd", "x".repeat(1 + Math.floor(next() * 5000)), "Ω≈ç√", "\u202e", "'; DROP TABLE apps; --", "%00", "web=3"];
  const piece = pieces[Math.floor(next() * pieces.length)]!;
  const at = Math.floor(next() * (piece.length + 1));
  return `${piece.slice(0, at)}\u0000${piece.slice(at)}`;
}

function scalar(type: ScalarType, next: () => number): unknown {
  const extremes = [0, -1, 1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 32 - 1];
  switch (type) {
    case ScalarType.STRING:
      return hostileString(next);
    case ScalarType.BOOL:
      return next() < 0.5;
    case ScalarType.BYTES:
      return new Uint8Array(Array.from({ length: Math.floor(next() * 64) }, () => Math.floor(next() * 256)));
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return [Number.NaN, Number.POSITIVE_INFINITY, -1e308, 0.5][Math.floor(next() * 4)];
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return [-(2n ** 63n), -1n, 2n ** 63n - 1n, 0n][Math.floor(next() * 4)];
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return [0n, 2n ** 64n - 1n, 2n ** 53n + 1n][Math.floor(next() * 3)];
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return [0, 2 ** 31, 2 ** 32 - 1][Math.floor(next() * 3)];
    default:
      return extremes[Math.floor(next() * 4)];
  }
}

/** A message of `desc` with every field set to something hostile (strings always carry a NUL). */
function hostileMessage(desc: DescMessage, next: () => number, depth = 0): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  const value = (field: DescField): unknown => {
    switch (field.fieldKind) {
      case "scalar":
        return scalar(field.scalar, next);
      case "enum":
        return Math.floor(next() * 1000) - 10;
      case "message":
        return depth < 3 ? hostileMessage(field.message, next, depth + 1) : undefined;
      case "list": {
        const length = Math.floor(next() * 4);
        if (field.listKind === "message") return depth < 3 ? Array.from({ length }, () => hostileMessage(field.message, next, depth + 1)) : [];
        if (field.listKind === "enum") return Array.from({ length }, () => Math.floor(next() * 1000));
        return Array.from({ length }, () => scalar(field.scalar, next));
      }
      case "map": {
        const entries: Record<string, unknown> = {};
        for (let i = Math.floor(next() * 4); i > 0; i--) {
          const key = String(scalar(field.mapKey, next));
          entries[key] =
            field.mapKind === "message" ? hostileMessage(field.message, next, depth + 1) : field.mapKind === "enum" ? 1 : scalar(field.scalar, next);
        }
        return entries;
      }
    }
  };
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const field = member.fields[Math.floor(next() * member.fields.length)]!;
      init[member.localName] = { case: field.localName, value: value(field) };
    } else {
      init[member.localName] = value(member);
    }
  }
  return init;
}

/** Everything a team can see, to compare before and after. */
async function stateOf(admin: PublicApi, team: PublicApi): Promise<string> {
  return JSON.stringify({
    teams: (await admin.teams.listTeams({})).teams.map((t) => t.name),
    adminTokens: (await admin.teams.listTokens({})).tokens.map((t) => t.id),
    tokens: (await team.teams.listTokens({})).tokens.map((t) => t.id),
    apps: (await team.apps.listApps({})).apps.map((a) => a.name),
    config: (await team.apps.getConfig({ app: "shop" })).config,
    releases: (await team.apps.listReleases({ app: "shop" })).releases.map((r) => [r.version, r.status]),
    formation: (await team.formation.getFormation({ app: "shop" })).processes.map((p) => [p.processType, p.replicas, p.size]),
    domains: (await team.domains.listDomains({ app: "shop" })).routes.map((route) => route.hostname),
  });
}

async function call(transport: Transport, service: DescService, method: DescMethod, input: Record<string, unknown>): Promise<Code | "OK"> {
  const client = createClient(service, transport) as unknown as Record<string, (input: unknown, options: unknown) => unknown>;
  try {
    const result = client[method.localName]!(input, { timeoutMs: 5000 });
    if (method.methodKind === "server_streaming") {
      for await (const _ of result as AsyncIterable<unknown>) break;
    } else {
      await result;
    }
    return "OK";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

test("thousands of malformed requests over every public method: no UNKNOWN or INTERNAL, and nothing changes", async (t) => {
  const platform = await startPlatformProcesses({ BERTH_ADMIN_TOKEN: ADMIN_TOKEN, BERTH_ROUTER_HTTP_PORT: "0", BERTH_ROUTER_HTTPS_PORT: "0" });
  t.teardown(() => platform.stop());
  const admin = publicApi(platform.urls.api, ADMIN_TOKEN);
  await admin.teams.createTeam({ name: "acme" });
  const secret = (await admin.teams.createToken({ team: "acme", description: "fuzz" })).secret;
  const acme = publicApi(platform.urls.api, secret);
  await acme.apps.createApp({ name: "shop" });
  const deployed = await deployDirectory(acme, "shop", demo, readFileSync(join(demo, "Procfile"), "utf8"));
  t.is(deployed.rollout.state, RolloutState.SUCCEEDED, deployed.rollout.message);
  const before = await stateOf(admin, acme);

  const next = random(SEED);
  const callers = [browserLikeTransport(platform.urls.api, secret), browserLikeTransport(platform.urls.api, ADMIN_TOKEN)];
  const codes = new Map<string, number>();
  const failures: string[] = [];
  let sent = 0;
  for (const service of SERVICES) {
    for (const method of service.methods) {
      for (let i = 0; i < REQUESTS_PER_METHOD; i++) {
        const input = hostileMessage(method.input, next);
        const code = await call(callers[i % 2]!, service, method, input);
        sent++;
        const name = code === "OK" ? "OK" : Code[code];
        codes.set(name, (codes.get(name) ?? 0) + 1);
        if (code === Code.Unknown || code === Code.Internal)
          failures.push(
            `${service.typeName}/${method.name} ${name}: ${JSON.stringify(input, (_k, v) => (typeof v === "bigint" ? String(v) : v)).slice(0, 300)}`,
          );
      }
      // Bytes that are no message at all, as binary and as JSON.
      for (const [contentType, body] of [
        ["application/proto", Buffer.from([0x00, 0x07, 0xff, 0x13])],
        ["application/json", Buffer.from('{"name": "\\u0000", "web": "0x3", ')],
        ["application/proto", Buffer.from(toBinary(method.input, create(method.input)).length === 0 ? [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f] : [0x0a])],
      ] as const) {
        const response = await fetch(`${platform.urls.api}/${service.typeName}/${method.name}`, {
          method: "POST",
          headers: { "content-type": contentType, authorization: `Bearer ${secret}`, "connect-protocol-version": "1" },
          body,
        });
        sent++;
        const text = await response.text();
        if (method.methodKind !== "unary") continue;
        const code = response.status === 200 ? "OK" : ((JSON.parse(text) as { code?: string }).code ?? "?");
        codes.set(`raw ${code}`, (codes.get(`raw ${code}`) ?? 0) + 1);
        if (code === "internal" || code === "unknown") failures.push(`${service.typeName}/${method.name} raw ${contentType}: ${text.slice(0, 200)}`);
      }
    }
  }
  t.log(`${sent} requests; answers: ${JSON.stringify(Object.fromEntries(codes))}`);
  t.true(sent > 2000);
  t.deepEqual(failures, []);
  t.is(await stateOf(admin, acme), before, "nothing changed");
});
