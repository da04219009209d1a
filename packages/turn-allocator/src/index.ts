export { readTurnAllocatorConfig } from "./config.js";
export type { TurnAllocatorConfig } from "./config.js";
export { startTurnAllocator } from "./start-turn-allocator.js";
export type { TurnAllocatorDeps } from "./start-turn-allocator.js";
