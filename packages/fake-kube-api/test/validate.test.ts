import test from "ava";
import { validateKubernetesObject } from "../src/index.js";

const deployment = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "apps", labels: { "app.kubernetes.io/name": "web" } },
  spec: {
    selector: { matchLabels: { app: "web" } },
    template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image: "nginx" }] } },
  },
};

test("a valid Deployment passes its schema", async (t) => {
  t.deepEqual(await validateKubernetesObject(deployment), { valid: true, schemaChecked: true, violations: [] });
});

test("schema violations name the field like the API server", async (t) => {
  const result = await validateKubernetesObject({
    ...deployment,
    spec: { ...deployment.spec, replicas: "2", template: { spec: { containers: [{ image: "nginx" }] } } },
  });
  t.false(result.valid);
  t.true(result.schemaChecked);
  t.deepEqual(result.violations.map((v) => `${v.field}: ${v.message}`).sort(), [
    "spec.replicas: Invalid value: must be integer",
    "spec.template.spec.containers[0].name: Required value",
  ]);
});

test("core kinds are checked too", async (t) => {
  const service = { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { ports: [{ port: "http" }] } };
  const result = await validateKubernetesObject(service);
  t.true(result.schemaChecked);
  t.deepEqual(result.violations, [{ field: "spec.ports[0].port", message: "Invalid value: must be integer" }]);
});

test("metadata rules apply to every kind, including ones without a schema", async (t) => {
  const certificate = { apiVersion: "cert-manager.io/v1", kind: "Certificate", metadata: { name: "Bad_Name", labels: { "ok/key": "-bad-" } }, spec: {} };
  const result = await validateKubernetesObject(certificate);
  t.false(result.valid);
  t.false(result.schemaChecked);
  t.deepEqual(
    result.violations.map((v) => v.field),
    ["metadata.name", "metadata.labels"],
  );
  t.deepEqual(await validateKubernetesObject({ ...certificate, metadata: { name: "tls" } }), { valid: true, schemaChecked: false, violations: [] });
  // A Service name is a DNS-1035 label: it may not start with a digit.
  t.false((await validateKubernetesObject({ apiVersion: "v1", kind: "Service", metadata: { name: "1web" } })).valid);
});

test("an object without apiVersion or kind is invalid", async (t) => {
  t.deepEqual((await validateKubernetesObject({ kind: "Deployment", metadata: { name: "x" } })).violations, [
    { field: "apiVersion", message: "Required value" },
  ]);
  t.deepEqual((await validateKubernetesObject({ apiVersion: "apps/v1", metadata: { name: "x" } })).violations, [{ field: "kind", message: "Required value" }]);
});
