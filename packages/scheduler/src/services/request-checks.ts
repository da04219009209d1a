import type { FieldChecks } from "@berth/kit";
import {
  configKeyProblem,
  createFieldChecks,
  dnsLabelProblem,
  environmentBytes,
  gitCommitProblem,
  internalHostname,
  routeHostLabel,
  invalidArgument,
  invalidArguments,
  MAX_CONFIG_VALUE_BYTES,
  MAX_CONFIG_VARS,
  MAX_ENVIRONMENT_BYTES,
  MAX_PROCFILE_BYTES,
  MAX_RELEASE_DESCRIPTION,
  parseProcfile,
} from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { parseImageReference } from "../image-reference.js";
import type { ReleaseContent } from "../release-creation.js";

// The pure checks of the scheduler's requests: each names the field it refuses.

const MAX_REQUEST_ID = 128;
/** The most lines a log tail may ask for. */
export const MAX_TAIL_LINES = 10_000;
const MAX_CONSUMER = 128;
const MAX_ID = 256;

/** An optional request id of a retried call. */
export function checkRequestId(checks: FieldChecks, requestId: string): void {
  if (requestId.length > MAX_REQUEST_ID) checks.add("request_id", `must be at most ${MAX_REQUEST_ID} characters`);
}

/**
 * Refuses what the store cannot hold or no caller should send, naming the
 * field: ids with control characters (a NUL cannot be stored), release
 * versions outside 1..2^31-1. The API checks the same for its callers; the
 * scheduler checks again for any internal caller.
 */
export function requireFields(fields: { ids?: Record<string, string>; optionalIds?: Record<string, string>; versions?: Record<string, number> }): void {
  const checks = createFieldChecks();
  for (const [field, value] of Object.entries(fields.ids ?? {})) checks.required(field, value, MAX_ID);
  for (const [field, value] of Object.entries(fields.optionalIds ?? {})) if (value !== "") checks.required(field, value, MAX_ID);
  for (const [field, value] of Object.entries(fields.versions ?? {})) checks.releaseVersion(field, value);
  checks.throwIfAny();
}

/** Refuses a name that is not a DNS label, naming `field`. */
export function requireName(field: string, value: string): void {
  const problem = dnsLabelProblem(value);
  if (problem !== undefined) throw invalidArgument(field, problem);
}

/** What a CreateRelease request must hold, beside the app and the Procfile. */
export interface ReleaseRequestFields {
  requestId: string;
  description: string;
  source: { case: "sourceUploadId" | "image"; value: string } | { case: undefined; value?: undefined } | undefined;
  commit: string;
}

/**
 * The fields of a CreateRelease: its artifact must suit the engine. An image
 * on the local engine is not a bad field but a platform that cannot run it:
 * the handler refuses it with FAILED_PRECONDITION (imageOnLocalEngine).
 */
export function checkReleaseRequest(checks: FieldChecks, engine: "local" | "kubernetes", request: ReleaseRequestFields): void {
  checkRequestId(checks, request.requestId);
  checks.maxLength("description", request.description, MAX_RELEASE_DESCRIPTION);
  const commitProblem = gitCommitProblem(request.commit);
  if (commitProblem !== undefined) checks.add("artifact.commit", commitProblem);
  const source = request.source;
  if (engine === "local" && source?.case !== "sourceUploadId" && source?.case !== "image") {
    checks.add("artifact.source_upload_id", "the local engine runs source archives: upload one and name it here");
  }
  if (engine === "kubernetes") {
    const problem = source?.case === "image" ? parseImageReference(source.value) : "the kubernetes engine runs container images: give an image reference";
    if (typeof problem === "string") checks.add("artifact.image", problem);
  }
}

/** Why the local engine refuses an image release (FAILED_PRECONDITION). */
export const IMAGE_ON_LOCAL_ENGINE =
  "this platform runs the local engine, which builds releases from source archives (berth deploy <dir>); deploying an image needs the kubernetes engine (BERTH_ENGINE=kubernetes)";

/** Checks a Procfile, naming each bad line, and the names it makes. */
export function processesFrom(app: string, procfile: string): ReleaseContent["processes"] {
  if (procfile.length > MAX_PROCFILE_BYTES) throw invalidArgument("procfile", `must be at most ${MAX_PROCFILE_BYTES} bytes`);
  const parsed = parseProcfile(procfile);
  if (!parsed.ok) throw invalidArguments(parsed.problems.map((description) => ({ field: "procfile", description })));
  const checks = createFieldChecks();
  for (const process of parsed.processes) {
    const hostname = internalHostname(app, process.processType);
    if (process.routingClass === RoutingClass.TCP && hostname.length > 63) {
      checks.add("procfile", `"${hostname}", the internal hostname of "${process.processType}", is longer than 63 characters`);
    }
    const label = routeHostLabel(app, process.processType);
    if (label !== undefined && label.length > 63) {
      checks.add("procfile", `"${label}", the first label of the platform hostname of "${process.processType}", is longer than 63 characters`);
    }
  }
  checks.throwIfAny();
  return parsed.processes.map(({ processType, command }) => ({ processType, command }));
}

/** A config change: keys the platform sets, bad names, oversized values, a key both set and unset. */
export function checkConfigChange(checks: FieldChecks, set: Record<string, string>, unset: string[]): void {
  for (const [key, value] of Object.entries(set)) {
    const problem = configKeyProblem(key);
    if (problem !== undefined) checks.add(`set[${JSON.stringify(key)}]`, problem);
    if (Buffer.byteLength(value) > MAX_CONFIG_VALUE_BYTES) checks.add(`set[${JSON.stringify(key)}]`, `value must be at most ${MAX_CONFIG_VALUE_BYTES} bytes`);
    // An environment string ends at its first NUL: exec cannot pass one.
    if (value.includes("\u0000")) checks.add(`set[${JSON.stringify(key)}]`, "value must not contain a NUL character");
  }
  unset.forEach((key, index) => {
    const problem = configKeyProblem(key);
    if (problem !== undefined) checks.add(`unset[${index}]`, problem);
    if (key in set) checks.add(`unset[${index}]`, `"${key}" is also set in the same request`);
  });
}

/** An app's whole environment after a change: bounded in vars and bytes, so that its replicas and release task can start. */
export function checkEnvironmentSize(checks: FieldChecks, environment: Record<string, string>): void {
  const count = Object.keys(environment).length;
  if (count > MAX_CONFIG_VARS) checks.add("set", `the app would have ${count} config vars, more than the ${MAX_CONFIG_VARS} an app may have`);
  const bytes = environmentBytes(environment);
  if (bytes > MAX_ENVIRONMENT_BYTES) {
    checks.add("set", `the app's environment would take ${bytes} bytes, more than the ${MAX_ENVIRONMENT_BYTES} an app may have; unset some config vars first`);
  }
}

/** The name an endpoint consumer (a router) gives itself. */
export function consumerProblem(consumer: string): string | undefined {
  return consumer === "" || consumer.length > MAX_CONSUMER ? `must name the consumer in 1 to ${MAX_CONSUMER} characters` : undefined;
}
