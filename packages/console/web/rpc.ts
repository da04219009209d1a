import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService } from "@berth/proto/api/v1/formation";
import { TeamService } from "@berth/proto/api/v1/identity";
import { DomainService, RtcService, TrustService } from "@berth/proto/api/v1/network";
import { BadRequestSchema } from "@berth/proto/google/rpc/error_details";

const TOKEN_KEY = "berth.token";

type SessionListener = (signedIn: boolean, message: string) => void;
const sessionListeners = new Set<SessionListener>();

/**
 * The team token, kept in the tab's session storage only: never in a URL,
 * a cookie or a log, and gone when the tab closes.
 */
export const session = {
  token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
    for (const listener of sessionListeners) listener(true, "");
  },
  /** Forgets the token; `message` says why on the sign-in page. */
  signOut(message = ""): void {
    sessionStorage.removeItem(TOKEN_KEY);
    for (const listener of sessionListeners) listener(false, message);
  },
  subscribe(listener: SessionListener): () => void {
    sessionListeners.add(listener);
    return () => sessionListeners.delete(listener);
  },
};

const EXPIRED = "Your token is no longer accepted (it expired or was revoked). Sign in again.";

/**
 * Signs out when the API refuses the token: every call, unary or stream, goes
 * through here or through `watchFailed`, so an expired or revoked token
 * always lands on the sign-in page with a message.
 */
export function noteFailure(error: unknown): ConnectError {
  const connectError = ConnectError.from(error);
  if (connectError.code === Code.Unauthenticated && session.token() !== null) session.signOut(EXPIRED);
  return connectError;
}

const bearer: Interceptor = (next) => async (request) => {
  const token = session.token();
  if (token !== null) request.header.set("authorization", `Bearer ${token}`);
  try {
    return await next(request);
  } catch (error) {
    throw noteFailure(error);
  }
};

// The RPCs are on the page's own origin; the API serves both.
const transport = createConnectTransport({ baseUrl: location.origin, interceptors: [bearer] });

/** The public API's generated clients: the only way the console talks to berth. */
export const api = {
  apps: createClient(AppService, transport),
  formation: createClient(FormationService, transport),
  teams: createClient(TeamService, transport),
  domains: createClient(DomainService, transport),
  rtc: createClient(RtcService, transport),
  trust: createClient(TrustService, transport),
};

/** One wrong field of a refused request (google.rpc.BadRequest). */
export interface FieldViolation {
  field: string;
  description: string;
}

/** The fields an INVALID_ARGUMENT named, from its google.rpc.BadRequest details. */
export function fieldViolations(error: ConnectError): FieldViolation[] {
  return error.findDetails(BadRequestSchema).flatMap((detail) => detail.fieldViolations.map(({ field, description }) => ({ field, description })));
}

/** True for an error a stream ends with when its page went away (not worth showing). */
export function isCancel(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}
