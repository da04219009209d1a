export { createFakeKubeApi } from "./server.js";
export type { FakeKubeApi, FakeKubeApiOptions, FieldValidation, ObjectFilter, RecordedRequest } from "./server.js";
export type { FakeNode, PodBehaviour, PodBehaviourHook, PodOutcome, PodTimings } from "./cluster/index.js";
export { defaultKinds } from "./registry.js";
export type { ResourceKind } from "./registry.js";
export { validateKubernetesObject } from "./validate.js";
export type { SchemaViolation, ValidationResult } from "./validate.js";
export type { Status, StatusCause } from "./status.js";
export type { ManagedFieldsEntry } from "./server-side-apply.js";
