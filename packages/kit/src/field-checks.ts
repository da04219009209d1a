import { invalidArguments } from "./errors.js";
import type { FieldViolation } from "./errors.js";
import { hostnameProblem, normalizeHostname } from "./hostnames.js";
import { dnsLabelProblem } from "./process-names.js";

/** Collects every problem of a request so that one refusal names them all. */
export interface FieldChecks {
  add(field: string, description: string): void;
  /** A lowercase DNS label: app, team and process type names. */
  dnsLabel(field: string, value: string): void;
  /** A non-empty string of at most `maxLength` characters, without control characters (a NUL cannot be stored). */
  required(field: string, value: string, maxLength?: number): void;
  /** A release version: 1 to 2^31-1, the range the store keeps. */
  releaseVersion(field: string, value: number): void;
  /** At most `maxLength` characters. */
  maxLength(field: string, value: string, maxLength: number): void;
  /** An optional client request id: empty, or 1-128 of [A-Za-z0-9._:-]. */
  requestId(field: string, value: string): void;
  /** A fully qualified hostname such as admin.example.com (any case, a trailing dot allowed), or a `*.` wildcard of one. */
  hostname(field: string, value: string): void;
  /** A shell command line (`run`, `ps:exec`): not empty, at most MAX_COMMAND_BYTES, no NUL (no argv can carry one). */
  shellCommand(field: string, value: string): void;
  /** Throws INVALID_ARGUMENT naming every problem found, if any. */
  throwIfAny(): void;
  readonly violations: readonly FieldViolation[];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
const MAX_RELEASE_VERSION = 2 ** 31 - 1;
/** The longest shell command line `run` and `ps:exec` take. */
export const MAX_COMMAND_BYTES = 16 * 1024;

/** Starts collecting the problems of one request. */
export function createFieldChecks(): FieldChecks {
  const violations: FieldViolation[] = [];
  const checks: FieldChecks = {
    violations,
    add(field, description) {
      violations.push({ field, description });
    },
    dnsLabel(field, value) {
      const problem = dnsLabelProblem(value);
      if (problem !== undefined) checks.add(field, problem);
    },
    required(field, value, maxLength) {
      if (value.trim() === "") checks.add(field, "must not be empty");
      else if (maxLength !== undefined && value.length > maxLength) checks.maxLength(field, value, maxLength);
      else if (CONTROL_CHARACTER.test(value)) checks.add(field, "must not contain control characters");
    },
    releaseVersion(field, value) {
      if (value < 1) checks.add(field, "must be 1 or more");
      else if (value > MAX_RELEASE_VERSION) checks.add(field, `must be at most ${MAX_RELEASE_VERSION}`);
    },
    maxLength(field, value, maxLength) {
      if (value.length > maxLength) checks.add(field, `must be at most ${maxLength} characters, got ${value.length}`);
    },
    requestId(field, value) {
      if (value !== "" && !REQUEST_ID.test(value)) checks.add(field, "must be 1-128 characters of letters, digits and . _ : -");
    },
    hostname(field, value) {
      const problem = hostnameProblem(normalizeHostname(value));
      if (problem !== undefined) checks.add(field, problem);
    },
    shellCommand(field, value) {
      if (value.trim() === "") checks.add(field, "must not be empty");
      else if (Buffer.byteLength(value) > MAX_COMMAND_BYTES) checks.add(field, `must be at most ${MAX_COMMAND_BYTES} bytes`);
      else if (value.includes("\0")) checks.add(field, "must not contain NUL characters");
    },
    throwIfAny() {
      if (violations.length > 0) throw invalidArguments(violations);
    },
  };
  return checks;
}
