export { startNetpol } from "./start-netpol.js";
export type { NetpolDeps, RunningNetpol } from "./start-netpol.js";
export { readNetpolConfig } from "./config.js";
export type { IngressPeer, NetpolConfig } from "./config.js";
