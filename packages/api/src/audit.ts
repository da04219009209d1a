import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "@berth/kit";
import { callerKey } from "./auth.js";
import type { AuditLog } from "./store/index.js";

// Connect has no Code member for success; gRPC calls it 0.
const OK = 0;
const READ_ONLY = /^(Get|List|Watch|Stream|WhoAmI|Explain)/;
// Chunks are part of one upload: the upload's start and the deploy that uses it are what matter.
const NOT_AUDITED = new Set(["UploadSourceChunk"]);

/** Whether an RPC changes something and so belongs in the audit log. */
export function isAuditedMethod(methodName: string): boolean {
  return !READ_ONLY.test(methodName) && !NOT_AUDITED.has(methodName);
}

function stringField(message: unknown, field: string): string {
  const value = (message as Record<string, unknown> | undefined)?.[field];
  return typeof value === "string" ? value : "";
}

/**
 * A server interceptor (inside the auth one) that records every mutating
 * call with its caller, app, request id and outcome. A failure to write the
 * log is reported but does not undo or fail a change that already happened.
 */
export function auditMutations(audit: AuditLog, logger: Logger): Interceptor {
  return (next) => async (request) => {
    const caller = request.contextValues.get(callerKey);
    if (!caller || request.stream || !isAuditedMethod(request.method.name)) return next(request);
    const rpc = `${request.service.typeName}/${request.method.name}`;
    const app = stringField(request.message, "app") || (request.method.name === "CreateApp" ? stringField(request.message, "name") : "");
    const requestId = stringField(request.message, "requestId");
    const record = (code: Code | typeof OK, message: string) =>
      audit
        .record({ tokenId: caller.tokenId, team: caller.team, rpc, app, requestId, code: auditCodeName(code), message })
        .catch((error: unknown) => logger.error("could not write the audit log", { rpc, error }));
    try {
      const response = await next(request);
      await record(OK, "");
      return response;
    } catch (error) {
      const connectError = ConnectError.from(error);
      await record(connectError.code, connectError.rawMessage);
      throw error;
    }
  };
}

/** "OK", "INVALID_ARGUMENT"... as gRPC tools print them (0 is OK). */
export function auditCodeName(code: Code | typeof OK): string {
  if (code === OK) return "OK";
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
