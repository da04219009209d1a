import test from "ava";
import { RFC1123_HOSTNAME_CASES } from "@berth/kit/testing";
import { customDomainProblem } from "../src/hostnames.js";

const policy = { platformDomain: "berth.localhost", allowWildcards: false };

test("custom domains must be RFC 1123 names outside the platform domain", (t) => {
  const cases: (readonly [string, RegExp | undefined])[] = [
    ...RFC1123_HOSTNAME_CASES,
    ["*.example.com", /wildcard domains are not allowed/],
    ["shop.berth.localhost", /belong to the platform/],
    ["berth.localhost", /belong to the platform/],
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
