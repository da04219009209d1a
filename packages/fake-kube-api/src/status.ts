/** The `reason` values a real API server puts in a failure Status. */
export type StatusReason =
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Invalid"
  | "BadRequest"
  | "MethodNotAllowed"
  | "Expired"
  | "UnsupportedMediaType"
  | "InternalError";

/** One entry of `details.causes` in a Status. */
export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

/** The `metav1.Status` object a real API server answers errors (and some deletes) with. */
export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: StatusReason;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: StatusCause[] };
  code: number;
}

const codes: Record<StatusReason, number> = {
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Invalid: 422,
  BadRequest: 400,
  MethodNotAllowed: 405,
  Expired: 410,
  UnsupportedMediaType: 415,
  InternalError: 500,
};

/** An error that the HTTP layer answers with its `status` body and code. */
export class StatusError extends Error {
  readonly status: Status;

  constructor(reason: StatusReason, message: string, details?: Status["details"]) {
    super(message);
    this.name = "StatusError";
    this.status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code: codes[reason], ...(details ? { details } : {}) };
  }

  /** The HTTP status code. */
  get code(): number {
    return this.status.code;
  }
}

/** The Status a successful delete of an immediately removed object answers with. */
export function successStatus(details: Status["details"]): Status {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details, code: 200 };
}

/** The 404 a real server answers for a path that names no resource it serves. */
export function resourceNotFound(): StatusError {
  return new StatusError("NotFound", "the server could not find the requested resource");
}
