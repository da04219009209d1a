/**
 * The routing contract's rules, for clients as well as services: process
 * names and their routing classes, the Procfile, and the one way to refuse a
 * request. Nothing here loads a server's dependencies (pg, the embedded PostgreSQL, ioredis,
 * prom-client): the CLI imports `@berth/kit/contract`, never `@berth/kit`.
 */
export * from "./process-names.js";
export * from "./procfile.js";
export * from "./errors.js";
