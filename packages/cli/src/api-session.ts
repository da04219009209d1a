import { createClient } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService } from "@berth/proto/api/v1/formation";
import { TeamService } from "@berth/proto/api/v1/identity";
import { DomainService, RtcService, TrustService } from "@berth/proto/api/v1/network";
import { ProcessService } from "@berth/proto/api/v1/processes";
import type { Credentials } from "./credentials.js";

/** Clients of the public API for one set of credentials. */
export function createApiSession({ apiUrl, token }: Credentials) {
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  // Connect over HTTP/1.1: what passes through every proxy a user may sit behind.
  const transport = createConnectTransport({ baseUrl: apiUrl, httpVersion: "1.1", interceptors: [bearer] });
  return {
    apiUrl,
    teams: createClient(TeamService, transport),
    apps: createClient(AppService, transport),
    formation: createClient(FormationService, transport),
    processes: createClient(ProcessService, transport),
    domains: createClient(DomainService, transport),
    rtc: createClient(RtcService, transport),
    trust: createClient(TrustService, transport),
  };
}

/** The API clients a command uses. */
export type ApiSession = ReturnType<typeof createApiSession>;
