import { ScalarType } from "@bufbuild/protobuf";
import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { createContextKey } from "@connectrpc/connect";
import type { ContextValues, Interceptor } from "@connectrpc/connect";
import type { Compression, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { invalidArguments } from "./errors.js";
import type { FieldViolation } from "./errors.js";

const INTEGER_TYPES = new Set([
  ScalarType.INT32,
  ScalarType.UINT32,
  ScalarType.SINT32,
  ScalarType.FIXED32,
  ScalarType.SFIXED32,
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);
// Wrappers whose JSON form is the bare number.
const INTEGER_WRAPPERS = new Set(["Int32Value", "UInt32Value", "Int64Value", "UInt64Value"].map((name) => `google.protobuf.${name}`));
// ProtoJSON's integers as strings: the JSON number syntax in quotes. protobuf-es
// reads them with Number(), which also takes "0x3", "0b11", "0o3" and " 3".
const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/** Where a call's raw JSON request bytes are kept, once captureJsonBody saw them. */
const rawJsonBody = createContextKey<{ chunks: Uint8Array[]; enveloped: boolean } | undefined>(undefined);

/** Whether an integer field's JSON value is one ProtoJSON allows; other types are protobuf-es's to judge. */
function integerViolation(field: string, value: unknown): FieldViolation | undefined {
  if (typeof value !== "string" || JSON_NUMBER.test(value)) return undefined;
  return { field, description: `must be a decimal integer, got ${JSON.stringify(value)}` };
}

function checkValue(field: DescField, path: string, value: unknown, out: FieldViolation[]): void {
  if (field.fieldKind === "scalar" && INTEGER_TYPES.has(field.scalar)) {
    const violation = integerViolation(path, value);
    if (violation) out.push(violation);
  } else if (field.fieldKind === "message") {
    checkMessage(field.message, path, value, out);
  }
}

function checkMessage(schema: DescMessage, prefix: string, json: unknown, out: FieldViolation[]): void {
  if (INTEGER_WRAPPERS.has(schema.typeName)) {
    const violation = integerViolation(prefix, json);
    if (violation) out.push(violation);
    return;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return;
  const object = json as Record<string, unknown>;
  for (const field of schema.fields) {
    const key = field.jsonName in object ? field.jsonName : field.name;
    const value = object[key];
    if (value === undefined || value === null) continue;
    const path = prefix === "" ? field.name : `${prefix}.${field.name}`;
    if (field.fieldKind === "list" && Array.isArray(value)) {
      const element = field.listKind === "scalar" ? INTEGER_TYPES.has(field.scalar) : field.listKind === "message";
      if (!element) continue;
      value.forEach((item, index) => {
        const itemPath = `${path}[${index}]`;
        if (field.listKind === "message") checkMessage(field.message, itemPath, item, out);
        else {
          const violation = integerViolation(itemPath, item);
          if (violation) out.push(violation);
        }
      });
    } else if (field.fieldKind === "map" && typeof value === "object" && !Array.isArray(value)) {
      for (const [mapKey, item] of Object.entries(value as Record<string, unknown>)) {
        const itemPath = `${path}[${mapKey}]`;
        if (INTEGER_TYPES.has(field.mapKey)) {
          const violation = integerViolation(`${path} key ${JSON.stringify(mapKey)}`, mapKey);
          if (violation) out.push(violation);
        }
        if (field.mapKind === "scalar" && INTEGER_TYPES.has(field.scalar)) {
          const violation = integerViolation(itemPath, item);
          if (violation) out.push(violation);
        } else if (field.mapKind === "message") checkMessage(field.message, itemPath, item, out);
      }
    } else {
      checkValue(field, path, value, out);
    }
  }
}

/** The integer fields of a request's ProtoJSON that hold a string ProtoJSON does not allow (like "0x3"). */
export function jsonIntegerViolations(schema: DescMessage, json: unknown): FieldViolation[] {
  const out: FieldViolation[] = [];
  checkMessage(schema, "", json, out);
  return out;
}

/**
 * Keeps the bytes of a Connect JSON request (unary `application/json`, or
 * the enveloped `application/connect+json`) as Connect reads them, for
 * jsonIntegerInterceptor: what protobuf-es accepted cannot be told from the
 * message it made. Connect's own read limit still bounds what is kept.
 */
export function captureJsonBody(request: UniversalServerRequest, contextValues: ContextValues): UniversalServerRequest {
  const contentType = request.header.get("content-type") ?? "";
  const enveloped = /^application\/connect\+json/.test(contentType);
  if (!enveloped && !/^application\/json/.test(contentType)) return request;
  const captured = { chunks: [] as Uint8Array[], enveloped };
  contextValues.set(rawJsonBody, captured);
  const body = request.body;
  if (typeof body !== "object" || body === null || !(Symbol.asyncIterator in body)) return request;
  return {
    ...request,
    body: (async function* () {
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        captured.chunks.push(chunk);
        yield chunk;
      }
    })(),
  };
}

/** The JSON messages of a captured body: one unary body, or every data envelope of a stream. */
async function capturedMessages(
  captured: { chunks: Uint8Array[]; enveloped: boolean },
  header: Headers,
  compressions: Compression[],
  readMaxBytes: number,
): Promise<Uint8Array[]> {
  const bytes = Buffer.concat(captured.chunks);
  const encodingHeader = captured.enveloped ? "connect-content-encoding" : "content-encoding";
  const compression = compressions.find((c) => c.name === header.get(encodingHeader));
  if (!captured.enveloped) return [compression ? await compression.decompress(bytes, readMaxBytes) : bytes];
  const messages: Uint8Array[] = [];
  for (let offset = 0; offset + 5 <= bytes.length; ) {
    const flags = bytes[offset] ?? 0;
    const length = bytes.readUInt32BE(offset + 1);
    const data = bytes.subarray(offset + 5, offset + 5 + length);
    offset += 5 + length;
    // 0x02 ends a stream; 0x01 marks a compressed message.
    if (flags & 0x02) continue;
    messages.push(flags & 0x01 && compression ? await compression.decompress(data, readMaxBytes) : data);
  }
  return messages;
}

/**
 * Refuses a Connect JSON request whose integer field holds a string that
 * ProtoJSON does not allow (`{"web":"0x3"}` would scale to 3) with
 * INVALID_ARGUMENT naming the field, before the handler sees the message.
 */
export function jsonIntegerInterceptor(compressions: Compression[], readMaxBytes: number): Interceptor {
  return (next) => async (request) => {
    const captured = request.contextValues.get(rawJsonBody);
    if (captured === undefined) return next(request);
    let checked = 0;
    // Connect parsed every message read so far, so their bytes are well-formed JSON.
    const checkNewMessages = async () => {
      const messages = await capturedMessages(captured, request.header, compressions, readMaxBytes);
      const violations = messages
        .slice(checked)
        .flatMap((message) => jsonIntegerViolations(request.method.input, JSON.parse(Buffer.from(message).toString("utf8"))));
      checked = messages.length;
      if (violations.length > 0) throw invalidArguments(violations);
    };
    if (!request.stream) {
      await checkNewMessages();
      return next(request);
    }
    // A stream's messages are read while the handler runs: each is checked before the handler gets it.
    const messages = request.message;
    return next({
      ...request,
      message: (async function* () {
        for await (const message of messages) {
          await checkNewMessages();
          yield message;
        }
      })(),
    });
  };
}
