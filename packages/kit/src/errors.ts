import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@berth/proto/google/rpc/error_details";

/** One invalid field of a request and why it is invalid. */
export interface FieldViolation {
  field: string;
  description: string;
}

/**
 * INVALID_ARGUMENT naming every offending field, with a google.rpc.BadRequest
 * detail so that gRPC tools and clients can read the fields without parsing text.
 */
export function invalidArguments(violations: FieldViolation[]): ConnectError {
  const message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  return new ConnectError(message, Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: violations }) },
  ]);
}

/** INVALID_ARGUMENT for one field. */
export function invalidArgument(field: string, description: string): ConnectError {
  return invalidArguments([{ field, description }]);
}

/** The field violations carried by an INVALID_ARGUMENT error, for clients and tests. */
export function fieldViolationsOf(error: unknown): FieldViolation[] {
  const connectError = ConnectError.from(error);
  return connectError.findDetails(BadRequestSchema).flatMap((detail) => detail.fieldViolations.map(({ field, description }) => ({ field, description })));
}

/** NOT_FOUND: the thing named does not exist (or the caller may not know it does). */
export const notFound = (message: string) => new ConnectError(message, Code.NotFound);
/** ALREADY_EXISTS: a unique name is taken. */
export const alreadyExists = (message: string) => new ConnectError(message, Code.AlreadyExists);
/** FAILED_PRECONDITION: the request is valid but the system is not in a state to do it. */
export const failedPrecondition = (message: string) => new ConnectError(message, Code.FailedPrecondition);
/** RESOURCE_EXHAUSTED: a pool, quota or rate limit is used up. */
export const resourceExhausted = (message: string) => new ConnectError(message, Code.ResourceExhausted);
/** PERMISSION_DENIED: the caller is known but may not do this. */
export const permissionDenied = (message: string) => new ConnectError(message, Code.PermissionDenied);
/** UNAUTHENTICATED: no valid credential was presented. */
export const unauthenticated = (message: string) => new ConnectError(message, Code.Unauthenticated);
/** UNAVAILABLE: a dependency cannot be reached right now; the caller may retry. */
export const unavailable = (message: string, cause?: unknown) => new ConnectError(message, Code.Unavailable, undefined, undefined, cause);
