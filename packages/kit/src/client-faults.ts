import { Code } from "@connectrpc/connect";
import { createAsyncIterable, encodeEnvelope } from "@connectrpc/connect/protocol";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, endStreamFlag } from "@connectrpc/connect/protocol-connect";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";

/**
 * What Connect reports as INTERNAL although the client sent it: bytes that
 * are not the message they claim to be, a compressed message without an
 * encoding, a compressed body that does not decompress. (Connect shares these
 * paths with its clients, where a bad response is the server's fault.)
 */
const CLIENT_FAULT = /^(parse binary: |received compressed envelope, but do not know how to decompress|decompression failed)/;

const GRPC_INTERNAL = String(Code.Internal);
const GRPC_INVALID_ARGUMENT = String(Code.InvalidArgument);

/** Whether a gRPC status and message in these headers name a client fault; the message, if so. */
function grpcClientFault(headers: Headers): string | undefined {
  if (headers.get("grpc-status") !== GRPC_INTERNAL) return undefined;
  const message = decodeURIComponent(headers.get("grpc-message") ?? "");
  return CLIENT_FAULT.test(message) ? message : undefined;
}

async function* mapChunks(body: AsyncIterable<Uint8Array>, map: (chunk: Uint8Array) => Uint8Array): AsyncIterable<Uint8Array> {
  for await (const chunk of body) yield map(chunk);
}

/** Turns a Connect error object naming a client fault from INTERNAL into INVALID_ARGUMENT; false if it names none. */
function remapJsonError(error: { code?: string; message?: string } | undefined): boolean {
  if (error?.code !== "internal" || !CLIENT_FAULT.test(error.message ?? "")) return false;
  error.code = "invalid_argument";
  return true;
}

/**
 * Answers a client's malformed message with INVALID_ARGUMENT instead of
 * INTERNAL, in each protocol's framing; `onClientFault` sees the message (for
 * a debug log). Other responses pass through untouched.
 */
export async function remapClientFaults(response: UniversalServerResponse, onClientFault: (message: string) => void): Promise<UniversalServerResponse> {
  const contentType = response.header?.get("content-type") ?? "";
  const { body } = response;
  if (body === undefined) return response;
  if (/^application\/grpc-web/.test(contentType)) {
    return {
      ...response,
      body: mapChunks(body, (chunk) => {
        // The trailers travel as the last frame; every frame is its own chunk.
        if (chunk[0] !== trailerFlag) return chunk;
        const trailer = trailerParse(chunk.subarray(5));
        const fault = grpcClientFault(trailer);
        if (fault === undefined) return chunk;
        onClientFault(fault);
        trailer.set("grpc-status", GRPC_INVALID_ARGUMENT);
        return encodeEnvelope(trailerFlag, trailerSerialize(trailer));
      }),
    };
  }
  if (/^application\/grpc/.test(contentType)) {
    const trailer = response.trailer;
    if (trailer === undefined) return response;
    return {
      ...response,
      body: (async function* () {
        yield* body;
        // The status is set on the trailers once the body is done, before they are written.
        const fault = grpcClientFault(trailer);
        if (fault === undefined) return;
        onClientFault(fault);
        trailer.set("grpc-status", GRPC_INVALID_ARGUMENT);
      })(),
    };
  }
  if (/^application\/connect\+/.test(contentType)) {
    return {
      ...response,
      body: mapChunks(body, (chunk) => {
        if (chunk[0] !== endStreamFlag) return chunk;
        const endStream = JSON.parse(new TextDecoder().decode(chunk.subarray(5))) as { error?: { code?: string; message?: string } };
        if (!remapJsonError(endStream.error)) return chunk;
        onClientFault(endStream.error!.message ?? "");
        return encodeEnvelope(endStreamFlag, new TextEncoder().encode(JSON.stringify(endStream)));
      }),
    };
  }
  if (response.status !== codeToHttpStatus(Code.Internal) || response.header?.has("content-encoding")) return response;
  // A unary Connect error: one small JSON body, read now because its HTTP status changes too.
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  let error: { code?: string; message?: string } | undefined;
  try {
    error = JSON.parse(bytes.toString("utf8")) as { code?: string; message?: string };
  } catch {
    error = undefined;
  }
  if (!remapJsonError(error)) return { ...response, body: createAsyncIterable([bytes]) };
  onClientFault(error!.message ?? "");
  const remapped = new TextEncoder().encode(JSON.stringify(error));
  const header = new Headers(response.header);
  header.set("content-length", String(remapped.byteLength));
  return { ...response, status: codeToHttpStatus(Code.InvalidArgument), header, body: createAsyncIterable([remapped]) };
}
