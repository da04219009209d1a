import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createFieldChecks,
  fieldViolationsOf,
  hostnameMatches,
  hostnameProblem,
  internalHostname,
  normalizeHostname,
  routeHostname,
} from "@berth/kit/contract";
import { RFC1123_HOSTNAME_CASES } from "@berth/kit/testing";

test("web is served at <app>.<domain>, <name>-web at <app>-<name>.<domain>, nothing else is routed", (t) => {
  const cases: [string, string | undefined][] = [
    ["web", "shop.berth.localhost"],
    ["admin-web", "shop-admin.berth.localhost"],
    ["api-v2-web", "shop-api-v2.berth.localhost"],
    ["worker", undefined],
    ["api-tcp", undefined],
    ["sfu-rtc", undefined],
    ["release", undefined],
    ["webhooks", undefined],
  ];
  for (const [processType, expected] of cases) t.is(routeHostname("shop", processType, "berth.localhost"), expected, processType);
  t.is(routeHostname("shop", "web", "apps.example.net"), "shop.apps.example.net");
});

test("a tcp process is reached at <app>-<process>", (t) => {
  t.is(internalHostname("shop", "api-tcp"), "shop-api-tcp");
});

test("a hostname is RFC 1123 labels, two or more besides a leading wildcard, and not an IP address", (t) => {
  const cases: (readonly [string, RegExp | undefined])[] = [
    ...RFC1123_HOSTNAME_CASES,
    ["*.example.com", undefined],
    ["*.com", /wildcard must be followed by at least two labels/],
  ];
  for (const [hostname, problem] of cases) {
    const found = hostnameProblem(hostname);
    if (problem) t.regex(found ?? "", problem, hostname);
    else t.is(found, undefined, hostname);
  }
});

test("hostnames are normalized to lowercase without a trailing dot, and a wildcard covers exactly one label", (t) => {
  t.is(normalizeHostname(" Admin.Example.COM. "), "admin.example.com");
  t.true(hostnameMatches("*.example.com", "a.example.com"));
  t.false(hostnameMatches("*.example.com", "a.b.example.com"));
  t.false(hostnameMatches("*.example.com", "example.com"));
  t.true(hostnameMatches("a.example.com", "a.example.com"));
});

test("field checks collect every problem and refuse once with INVALID_ARGUMENT naming each field", (t) => {
  const checks = createFieldChecks();
  checks.dnsLabel("app", "Shop!");
  checks.hostname("hostname", "Admin.Example.com.");
  checks.hostname("other", "*.example.com");
  checks.hostname("bad", "localhost");
  checks.required("description", "  ");
  checks.maxLength("user", "x".repeat(5), 4);
  checks.requestId("request_id", "has space");
  const error = t.throws(() => checks.throwIfAny());
  t.is(ConnectError.from(error).code, Code.InvalidArgument);
  t.deepEqual(
    fieldViolationsOf(error).map((violation) => violation.field),
    ["app", "bad", "description", "user", "request_id"],
  );
  t.notThrows(() => createFieldChecks().throwIfAny());
});
