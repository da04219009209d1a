export * from "./store/index.js";
export * from "./coordination/index.js";
