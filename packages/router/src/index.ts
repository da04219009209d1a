export { startRouter } from "./start-router.js";
export type { RouterDeps, RunningRouter } from "./start-router.js";
export { readRouterConfig } from "./config.js";
export type { RouterConfig, TlsMode } from "./config.js";
