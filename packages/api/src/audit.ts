import type { Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import { observeCall } from "@berth/kit";
import type { Logger } from "@berth/kit";
import { callerKey } from "./auth.js";
import type { AuditEvent, AuditLog } from "./store/index.js";

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
 * call with its caller, app, request id and outcome: a streaming call (a run,
 * an exec) once, when its stream ends. Only those fields and the outcome's
 * message are kept, never the rest of the request (a command line may carry
 * a secret).
 */
export function auditMutations(audit: AuditLog, logger: Logger): Interceptor {
  return (next) => async (request) => {
    const caller = request.contextValues.get(callerKey);
    if (!caller || !isAuditedMethod(request.method.name)) return next(request);
    // A client stream's messages arrive as the call runs; the API has no mutating one to audit.
    if (request.stream && request.method.methodKind !== "server_streaming") return next(request);
    // A server stream's request is its one message: read here, and handed on as it came.
    const messages: Message[] = [];
    if (request.stream) for await (const message of request.message) messages.push(message);
    else messages.push(request.message);
    const message = messages[0];
    const rpc = `${request.service.typeName}/${request.method.name}`;
    const app = stringField(message, "app") || (request.method.name === "CreateApp" ? stringField(message, "name") : "");
    const requestId = stringField(message, "requestId");
    const audited = { tokenId: caller.tokenId, team: caller.team, rpc, app, requestId };
    const call = request.stream ? { ...request, message: createAsyncIterable(messages) } : request;
    return observeCall(() => next(call), { ended: (error) => recordOutcome(audit, logger, audited, error) });
  };
}

/**
 * Records how an audited call ended: OK, or the error it failed with (its
 * code and message only). A failure to write the log is reported, never
 * thrown: it must not undo or fail a change that already happened.
 */
export async function recordOutcome(audit: AuditLog, logger: Logger, call: Omit<AuditEvent, "code" | "message">, error?: unknown): Promise<void> {
  const failure = error === undefined ? undefined : ConnectError.from(error);
  await audit
    .record({ ...call, code: auditCodeName(failure?.code ?? OK), message: failure?.rawMessage ?? "" })
    .catch((recordError: unknown) => logger.error("could not write the audit log", { rpc: call.rpc, error: recordError }));
}

/** "OK", "INVALID_ARGUMENT"... as gRPC tools print them (0 is OK). */
function auditCodeName(code: Code | typeof OK): string {
  if (code === OK) return "OK";
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
