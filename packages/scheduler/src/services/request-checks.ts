import type { FieldViolation } from "@berth/kit";
import { dnsLabelProblem, invalidArgument, invalidArguments, parseProcfile } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { ReleaseContent } from "../release-creation.js";

// The pure checks of the scheduler's requests: each names the field it refuses.

const MAX_REQUEST_ID = 128;
const MAX_DESCRIPTION = 1000;
const MAX_PROCFILE_BYTES = 64 * 1024;
const MAX_CONFIG_VALUE_BYTES = 32 * 1024;
/** The most lines a log tail may ask for. */
export const MAX_TAIL_LINES = 10_000;
const MAX_CONSUMER = 128;
const CONFIG_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
const IMAGE_REFERENCE = /^[a-z0-9]+([._\-/:@][A-Za-z0-9_.-]+)*$/;

/** The processes of an app whose release has no Procfile. */
export const DEFAULT_PROCESSES = [{ processType: "web", command: "" }];

/** Refuses the violations, if any, at once with INVALID_ARGUMENT. */
export function throwIfAny(violations: FieldViolation[]): void {
  if (violations.length > 0) throw invalidArguments(violations);
}

/** A team or app name: a DNS label. */
export function checkName(violations: FieldViolation[], field: string, value: string): void {
  const problem = dnsLabelProblem(value);
  if (problem !== undefined) violations.push({ field, description: problem });
}

/** An optional request id of a retried call. */
export function checkRequestId(violations: FieldViolation[], requestId: string): void {
  if (requestId.length > MAX_REQUEST_ID) violations.push({ field: "request_id", description: `must be at most ${MAX_REQUEST_ID} characters` });
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
}

/** The fields of a CreateRelease: its artifact must suit the engine. */
export function releaseRequestViolations(engine: "local" | "kubernetes", request: ReleaseRequestFields): FieldViolation[] {
  const violations: FieldViolation[] = [];
  checkRequestId(violations, request.requestId);
  if (request.description.length > MAX_DESCRIPTION) violations.push({ field: "description", description: `must be at most ${MAX_DESCRIPTION} characters` });
  const source = request.source;
  if (engine === "local" && source?.case !== "sourceUploadId") {
    violations.push({ field: "artifact.source_upload_id", description: "the local engine runs source archives: upload one and name it here" });
  }
  if (engine === "kubernetes" && (source?.case !== "image" || !IMAGE_REFERENCE.test(source.value))) {
    violations.push({ field: "artifact.image", description: "the kubernetes engine runs container images: give an image reference" });
  }
  return violations;
}

/** Checks a Procfile, naming each bad line, and the names it makes. */
export function processesFrom(app: string, procfile: string): ReleaseContent["processes"] {
  if (procfile.length > MAX_PROCFILE_BYTES) throw invalidArgument("procfile", `must be at most ${MAX_PROCFILE_BYTES} bytes`);
  const parsed = parseProcfile(procfile);
  if (!parsed.ok) throw invalidArguments(parsed.problems.map((description) => ({ field: "procfile", description })));
  const violations: FieldViolation[] = [];
  for (const process of parsed.processes) {
    if (process.routingClass === RoutingClass.TCP && `${app}-${process.processType}`.length > 63) {
      violations.push({ field: "procfile", description: `"${app}-${process.processType}", the internal hostname of "${process.processType}", is longer than 63 characters` });
    }
  }
  throwIfAny(violations);
  return parsed.processes.map(({ processType, command }) => ({ processType, command }));
}

/** The violations of a config change: keys the platform sets, bad names, oversized values, a key both set and unset. */
export function configChangeViolations(set: Record<string, string>, unset: string[]): FieldViolation[] {
  const violations: FieldViolation[] = [];
  const keyProblem = (key: string) =>
    !CONFIG_KEY.test(key) ? "must be letters, digits and _, not starting with a digit" : key === "PORT" || key.startsWith("BERTH_") ? "is set by the platform" : undefined;
  for (const [key, value] of Object.entries(set)) {
    const problem = keyProblem(key);
    if (problem !== undefined) violations.push({ field: `set[${JSON.stringify(key)}]`, description: problem });
    if (Buffer.byteLength(value) > MAX_CONFIG_VALUE_BYTES) violations.push({ field: `set[${JSON.stringify(key)}]`, description: `value must be at most ${MAX_CONFIG_VALUE_BYTES} bytes` });
  }
  unset.forEach((key, index) => {
    const problem = keyProblem(key);
    if (problem !== undefined) violations.push({ field: `unset[${index}]`, description: problem });
    if (key in set) violations.push({ field: `unset[${index}]`, description: `"${key}" is also set in the same request` });
  });
  return violations;
}

/** The name an endpoint consumer (a router) gives itself. */
export function consumerProblem(consumer: string): string | undefined {
  return consumer === "" || consumer.length > MAX_CONSUMER ? `must name the consumer in 1 to ${MAX_CONSUMER} characters` : undefined;
}
