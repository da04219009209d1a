import test from "ava";
import { customDomainProblem } from "../src/hostnames.js";

const policy = { platformDomain: "berth.localhost", allowWildcards: false };

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
});
