import test from "ava";
import { eventually } from "@berth/kit/testing";
import { KubernetesObjectApi, PatchStrategy, type KubernetesObject } from "@kubernetes/client-node";
import { createFakeKubeApi, kubectlFor, type FakeKubeApi, type FakeKubeApiOptions } from "../src/index.js";

type Json = Record<string, any>;

async function setup(t: { teardown(fn: () => unknown): void }, options: FakeKubeApiOptions = {}) {
  const api = await createFakeKubeApi({ certificateTimings: { issueDelayMs: 20 }, ...options });
  t.teardown(() => api.close());
  const client = KubernetesObjectApi.makeApiClient(api.kubeConfig());
  const apply = (object: Json) => client.patch(object as KubernetesObject, undefined, undefined, "test", true, PatchStrategy.ServerSideApply) as Promise<Json>;
  return { api, client, apply };
}

function ingress(
  tls: { hosts: string[]; secretName: string }[],
  annotations: Record<string, string> = { "cert-manager.io/cluster-issuer": "letsencrypt" },
): Json {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name: "shop", namespace: "apps", annotations },
    spec: {
      ingressClassName: "nginx",
      tls,
      rules: tls.flatMap((entry) =>
        entry.hosts.map((host) => ({
          host,
          http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "shop", port: { number: 80 } } } }] },
        })),
      ),
    },
  };
}

const certificates = (api: FakeKubeApi) => api.objects({ kind: "Certificate", namespace: "apps" }) as Json[];
const certificate = (api: FakeKubeApi, name: string) => certificates(api).find((entry) => entry.metadata.name === name);
const conditionOf = (object: Json | undefined, type: string) => object?.status?.conditions?.find((entry: Json) => entry.type === type);
const readyOf = (api: FakeKubeApi, name: string) => () =>
  conditionOf(certificate(api, name), "Ready")?.status === "True" ? certificate(api, name) : undefined;
const failedOf = (api: FakeKubeApi, name: string) => () =>
  conditionOf(certificate(api, name), "Issuing")?.reason === "Failed" ? certificate(api, name) : undefined;

test("ingress-shim makes one Certificate per TLS secret of an annotated Ingress, owned by it, and the issuer marks it Ready", async (t) => {
  const { api, apply } = await setup(t);
  await apply(
    ingress([
      { hosts: ["shop.apps.example.net"], secretName: "shop-a-tls" },
      { hosts: ["www.shop.example"], secretName: "shop-b-tls" },
    ]),
  );
  const issued = await eventually(readyOf(api, "shop-a-tls"), "the platform hostname's certificate");
  const ingressUid = (api.objects({ kind: "Ingress", namespace: "apps", name: "shop" })[0] as Json).metadata.uid;
  t.deepEqual(issued.spec, {
    dnsNames: ["shop.apps.example.net"],
    secretName: "shop-a-tls",
    issuerRef: { name: "letsencrypt", kind: "ClusterIssuer", group: "cert-manager.io" },
    usages: ["digital signature", "key encipherment"],
  });
  t.like(issued.metadata.ownerReferences[0], { kind: "Ingress", name: "shop", uid: ingressUid, controller: true });
  t.like(conditionOf(issued, "Ready"), { reason: "Ready", observedGeneration: 1 });
  t.is(issued.status.revision, 1);
  const validity = Date.parse(issued.status.notAfter) - Date.parse(issued.status.notBefore);
  t.is(validity, 90 * 24 * 3600 * 1000);
  t.true(Date.parse(issued.status.renewalTime) < Date.parse(issued.status.notAfter));
  await eventually(readyOf(api, "shop-b-tls"), "the custom domain's certificate");

  // kubectl, the independent client, sees the custom resource under its short name.
  const kubectl = kubectlFor(api);
  t.teardown(() => kubectl.dispose());
  const listed = await kubectl.run(["get", "certs", "-n", "apps", "-o", "jsonpath={.items[*].metadata.name}"]);
  t.is(listed.stdout.trim(), "shop-a-tls shop-b-tls", listed.stderr);
});

test("a hostname configured to fail fails alone: its Certificate reports the reason, the other one is issued", async (t) => {
  const { api, apply } = await setup(t, {
    certificateIssuance: (dnsNames) =>
      dnsNames.includes("broken.example") ? "ACME order failed: DNS problem: NXDOMAIN looking up A for broken.example" : undefined,
  });
  await apply(
    ingress([
      { hosts: ["shop.apps.example.net"], secretName: "shop-a-tls" },
      { hosts: ["broken.example"], secretName: "shop-b-tls" },
    ]),
  );
  await eventually(readyOf(api, "shop-a-tls"), "the platform hostname's certificate");
  const failed = await eventually(failedOf(api, "shop-b-tls"), "the broken domain's failure");
  t.like(conditionOf(failed, "Ready"), { status: "False", reason: "DoesNotExist" });
  t.regex(conditionOf(failed, "Issuing").message, /failed to complete and will be retried: ACME order failed: DNS problem: NXDOMAIN/);
  t.is(failed.status.failedIssuanceAttempts, 1);
  t.truthy(failed.status.lastFailureTime);
  t.is(failed.status.notAfter, undefined);

  // Fixing DNS alone does not retry (cert-manager backs off); a spec change does.
  api.setCertificateIssuance(undefined);
  await apply(
    ingress([
      { hosts: ["shop.apps.example.net"], secretName: "shop-a-tls" },
      { hosts: ["broken.example", "www.broken.example"], secretName: "shop-b-tls" },
    ]),
  );
  const retried = await eventually(readyOf(api, "shop-b-tls"), "the domain's certificate after the change");
  t.deepEqual(retried.spec.dnsNames, ["broken.example", "www.broken.example"]);
  t.is(retried.status.failedIssuanceAttempts, undefined);
});

test("Certificates follow the Ingress: a dropped TLS entry's Certificate goes, a changed one is reissued, an unannotated Ingress gets none", async (t) => {
  const { api, apply, client } = await setup(t);
  await apply(
    ingress([
      { hosts: ["shop.apps.example.net"], secretName: "shop-a-tls" },
      { hosts: ["www.shop.example"], secretName: "shop-b-tls" },
    ]),
  );
  await eventually(readyOf(api, "shop-b-tls"), "both certificates");
  await apply(ingress([{ hosts: ["shop.apps.example.net", "shop2.apps.example.net"], secretName: "shop-a-tls" }]));
  const reissued = await eventually(
    () => (certificate(api, "shop-a-tls")?.status?.revision === 2 ? certificate(api, "shop-a-tls") : undefined),
    "the reissued certificate",
  );
  t.deepEqual(reissued.spec.dnsNames, ["shop.apps.example.net", "shop2.apps.example.net"]);
  t.like(conditionOf(reissued, "Ready"), { status: "True", observedGeneration: 2 });
  await eventually(() => (certificate(api, "shop-b-tls") === undefined ? true : undefined), "the dropped certificate to go");

  await client.delete({ apiVersion: "networking.k8s.io/v1", kind: "Ingress", metadata: { name: "shop", namespace: "apps" } });
  await eventually(() => (certificates(api).length === 0 ? true : undefined), "the garbage collector to remove the Ingress's certificates");

  await apply(ingress([{ hosts: ["plain.example"], secretName: "plain-tls" }], {}));
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.deepEqual(certificates(api), [], "no issuer annotation, no Certificate");
});
