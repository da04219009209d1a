import test from "ava";
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from "../src/label-selector.js";
import { StatusError } from "../src/status.js";

const matches = (selector: string, labels: Record<string, string>) => matchesLabels(parseLabelSelector(selector), labels);

test("label selector operators", (t) => {
  const labels = { app: "web", tier: "front", replicas: "3", empty: "" };
  t.true(matches("app=web", labels));
  t.true(matches("app == web", labels));
  t.false(matches("app=api", labels));
  t.true(matches("app!=api", labels));
  t.true(matches("missing!=x", labels), "!= matches a missing label");
  t.true(matches("tier in (front, back)", labels));
  t.false(matches("tier in (back)", labels));
  t.true(matches("tier notin (back)", labels));
  t.true(matches("missing notin (back)", labels), "notin matches a missing label");
  t.false(matches("missing in (back)", labels));
  t.true(matches("app", labels));
  t.false(matches("!app", labels));
  t.true(matches("!missing", labels));
  t.true(matches("replicas>2,replicas<4", labels));
  t.false(matches("replicas>3", labels));
  t.true(matches("empty=", labels));
  t.true(matches("app.kubernetes.io/name notin (x),app=web", labels));
  t.true(matches("", labels));
});

test("malformed label selectors are a 400", (t) => {
  for (const selector of ["app in (a", "app in a", "=web", "app=web,,", "app=web tier=x"]) {
    const error = t.throws(() => parseLabelSelector(selector), { instanceOf: StatusError }, selector);
    t.is(error?.code, 400);
  }
});

test("field selectors on metadata and on fields the kind indexes", (t) => {
  const pod = { metadata: { name: "web-1", namespace: "apps" }, status: { phase: "Running" } };
  t.true(matchesFields(parseFieldSelector("metadata.name=web-1", "Pod"), pod));
  t.true(matchesFields(parseFieldSelector("metadata.namespace!=other,status.phase==Running", "Pod"), pod));
  t.false(matchesFields(parseFieldSelector("status.phase=Pending", "Pod"), pod));
  t.is(t.throws(() => parseFieldSelector("status.phase=Running", "Deployment"), { instanceOf: StatusError })?.code, 400);
});
