import test from "ava";
import { ConfigError } from "@berth/kit";
import { readRouterConfig } from "../src/config.js";

const base = { BERTH_INTERNAL_TOKEN: "a-test-token-of-enough-length", BERTH_DATA_DIR: "/tmp/berth-config-test" };

test("defaults: local engine, proxy on 8000/8443, platform CA, 30 s replica wait, berth.localhost", (t) => {
  const config = readRouterConfig(base);
  t.is(config.port, 8082);
  t.is(config.engine, "local");
  t.like(config.proxy, {
    httpPort: 8000,
    httpsPort: 8443,
    publicHttpPort: 8000,
    publicHttpsPort: 8443,
    redirectHttps: false,
    replicaWaitMs: 30_000,
    drainTimeoutMs: 30_000,
  });
  t.is(config.tls.mode, "platform-ca");
  t.is(config.tls.renewBeforeMs, 30 * 24 * 60 * 60 * 1000);
  t.is(config.platformDomain, "berth.localhost");
  t.is(config.schedulerUrl, "http://127.0.0.1:8081");
  t.false(config.allowWildcardDomains);
  t.like(config.kubernetes, { namespace: "berth-apps", ingressClass: "nginx", clusterIssuer: "letsencrypt", webServicePort: 80 });
});

test("every setting is read from its variable", (t) => {
  const config = readRouterConfig({
    ...base,
    BERTH_PLATFORM_DOMAIN: "Apps.Example.NET",
    BERTH_ROUTER_HTTP_PORT: "80",
    BERTH_ROUTER_HTTPS_PORT: "443",
    BERTH_ROUTER_PUBLIC_HTTPS_PORT: "8443",
    BERTH_ROUTER_REDIRECT_HTTPS: "true",
    BERTH_ROUTER_REPLICA_WAIT_MS: "5000",
    BERTH_ROUTER_TLS: "acme",
    BERTH_ACME_DIRECTORY_URL: "https://acme.example.net/directory",
    BERTH_ACME_EMAIL: "ops@example.net",
    BERTH_CERT_RENEW_BEFORE_DAYS: "20",
    BERTH_ENGINE: "kubernetes",
    BERTH_INGRESS_CLASS: "traefik",
    BERTH_CLUSTER_ISSUER: "letsencrypt-staging",
    BERTH_ROUTER_ALLOW_WILDCARD_DOMAINS: "1",
  });
  t.is(config.platformDomain, "apps.example.net");
  t.like(config.proxy, { httpPort: 80, httpsPort: 443, publicHttpPort: 80, publicHttpsPort: 8443, redirectHttps: true, replicaWaitMs: 5000 });
  t.like(config.tls, {
    mode: "acme",
    acmeDirectoryUrl: "https://acme.example.net/directory",
    acmeEmail: "ops@example.net",
    renewBeforeMs: 20 * 24 * 60 * 60 * 1000,
  });
  t.is(config.engine, "kubernetes");
  t.like(config.kubernetes, { ingressClass: "traefik", clusterIssuer: "letsencrypt-staging" });
  t.true(config.allowWildcardDomains);
});

test("bad values fail loudly, naming the variable", (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ BERTH_ROUTER_TLS: "acme" }, /BERTH_ACME_DIRECTORY_URL is required/],
    [{ BERTH_ROUTER_TLS: "maybe" }, /BERTH_ROUTER_TLS must be one of/],
    [{ BERTH_ROUTER_HTTP_PORT: "http" }, /BERTH_ROUTER_HTTP_PORT must be an integer/],
    [{ BERTH_ROUTER_HTTPS_PORT: "70000" }, /BERTH_ROUTER_HTTPS_PORT must be at most 65535/],
    [{ BERTH_PLATFORM_DOMAIN: "not a domain" }, /BERTH_PLATFORM_DOMAIN must be a DNS name/],
    [{ BERTH_ACME_DIRECTORY_URL: "ftp://x" }, /BERTH_ACME_DIRECTORY_URL must be an http\(s\) URL/],
    [{ BERTH_ENGINE: "nomad" }, /BERTH_ENGINE must be one of/],
  ];
  for (const [env, message] of cases) {
    const error = t.throws(() => readRouterConfig({ ...base, ...env }), { instanceOf: ConfigError });
    t.regex(error?.message ?? "", message);
  }
});
