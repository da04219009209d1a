/**
 * The routing contract's rules, for clients as well as services: process
 * names and their routing classes, the Procfile, hostnames (route, internal,
 * custom), pod resource minimums, the one way to check and refuse a
 * request, and canonical JSON for fingerprints. Nothing here loads a
 * server's dependencies (pg, the embedded PostgreSQL, ioredis, prom-client):
 * the CLI imports `@berth/kit/contract`, never `@berth/kit`.
 */
export * from "./process-names.js";
export * from "./procfile.js";
export * from "./errors.js";
export * from "./hostnames.js";
export * from "./pod-resources.js";
export * from "./field-checks.js";
export * from "./canonical-json.js";
export * from "./release-rules.js";
export * from "./canary-rules.js";
export * from "./rollout-text.js";
