import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { RtcService } from "@berth/proto/api/v1/network";
import { serve, servePartial, silentLogger, startServer } from "@berth/kit";

test("serve refuses, at compile time, a service with a handler left out; servePartial answers UNIMPLEMENTED for it", async (t) => {
  const listAllocations = () => ({ allocations: [] });
  // @ts-expect-error: getCredentials and rotateSecret are missing, so `npm run typecheck` fails if serve ever accepts a partial service.
  const forgotten = serve(RtcService, { listAllocations });
  t.is(forgotten.service, RtcService);

  const server = await startServer({ name: "serve-types", port: 0, services: [servePartial(RtcService, { listAllocations })], logger: silentLogger });
  t.teardown(() => server.close(1000));
  const client = createClient(RtcService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
  t.deepEqual((await client.listAllocations({ app: "a" })).allocations, []);
  const error = await t.throwsAsync(client.getCredentials({ app: "a", processType: "call-rtc" }));
  t.is(ConnectError.from(error).code, Code.Unimplemented);
});
