import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { ConnectError } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, createEndStreamSerialization, endStreamFlag, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * Answers an RPC with an error without reading its body, in the protocol the
 * client speaks (gRPC, gRPC-Web, Connect streaming or unary). Used to refuse a
 * call on its headers alone, so a hostile body is never buffered or parsed.
 */
export function writeRefusal(request: NodeRequest, response: NodeResponse, error: ConnectError): void {
  const contentType = String(request.headers["content-type"] ?? "");
  // Over HTTP/1.1 the unread body would otherwise be drained from the socket; closing ends it.
  if (request.httpVersionMajor === 1) response.setHeader("connection", "close");
  if (/^application\/grpc-web/.test(contentType)) {
    const trailer = new Headers();
    setTrailerStatus(trailer, error);
    response.writeHead(200, { "content-type": contentType });
    response.end(encodeEnvelope(trailerFlag, trailerSerialize(trailer)));
  } else if (/^application\/grpc/.test(contentType)) {
    const trailer = new Headers();
    setTrailerStatus(trailer, error);
    response.writeHead(200, { "content-type": contentType });
    (response as http.ServerResponse).addTrailers(Object.fromEntries(trailer));
    response.end();
  } else if (/^application\/connect\+/.test(contentType)) {
    const endStream = createEndStreamSerialization({}).serialize({ metadata: new Headers(), error });
    response.writeHead(200, { "content-type": contentType });
    response.end(encodeEnvelope(endStreamFlag, endStream));
  } else {
    response.writeHead(codeToHttpStatus(error.code), { "content-type": "application/json" });
    response.end(errorToJsonBytes(error, {}));
  }
}
