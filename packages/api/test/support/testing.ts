/**
 * `@berth/api/testing`: the API's test harnesses for other packages' tests
 * (the CLI's, the whole-platform ones): the API alone against stand-in peers,
 * and the API on the real services.
 */
export { INTERNAL_TOKEN, apiClients, startApiHarness } from "./api-harness.js";
export type { ApiHarness, ApiHarnessOptions } from "./api-harness.js";
export { mutatingCalls } from "./peer-stand-ins.js";
export { DEMO_DIR, deployDirectory, followRolloutThroughApi, startPlatformHarness, uploadDirectory } from "./platform-harness.js";
export type { PlatformHarness, PlatformHarnessOptions } from "./platform-harness.js";
export { createGitRepository, nodeAppFiles } from "./git-repository.js";
export type { GitOutcome, GitRepository } from "./git-repository.js";
