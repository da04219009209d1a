import test from "ava";
import { customDomainProblem, hostnameMatches, normalizeHostname, routeHostname } from "../src/hostnames.js";

const policy = { platformDomain: "berth.localhost", allowWildcards: false };

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

test("custom domains must be RFC 1123 names outside the platform domain", (t) => {
  const cases: [string, RegExp | undefined][] = [
    ["admin.example.com", undefined],
    ["example.com", undefined],
    ["a-b.c-d.example.co.uk", undefined],
    ["xn--bcher-kva.example", undefined],
    ["", /must not be empty/],
    ["localhost", /at least two labels/],
    ["-bad.example.com", /label "-bad"/],
    ["bad-.example.com", /label "bad-"/],
    ["under_score.example.com", /label "under_score"/],
    ["double..dot.com", /empty labels/],
    [`${"a".repeat(64)}.example.com`, /longer than 63/],
    [`${"abcdefghi.".repeat(26)}com`, /at most 253/],
    ["10.0.0.1", /not an IP address/],
    ["*.example.com", /wildcard domains are not allowed/],
    ["shop.berth.localhost", /belong to the platform/],
    ["berth.localhost", /belong to the platform/],
    ["foo.*.example.com", /only be the first label/],
  ];
  for (const [hostname, problem] of cases) {
    const found = customDomainProblem(hostname, policy);
    if (problem) t.regex(found ?? "", problem, hostname);
    else t.is(found, undefined, hostname);
  }
});

test("wildcards are accepted only when the platform allows them", (t) => {
  const allowing = { ...policy, allowWildcards: true };
  t.is(customDomainProblem("*.example.com", allowing), undefined);
  t.regex(customDomainProblem("*.com", allowing) ?? "", /at least two labels/);
  t.true(hostnameMatches("*.example.com", "a.example.com"));
  t.false(hostnameMatches("*.example.com", "a.b.example.com"));
  t.false(hostnameMatches("*.example.com", "example.com"));
  t.true(hostnameMatches("a.example.com", "a.example.com"));
});

test("hostnames are normalized to lowercase without a trailing dot", (t) => {
  t.is(normalizeHostname(" Admin.Example.COM. "), "admin.example.com");
});
