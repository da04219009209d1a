import { createRegistry, isMessage, toJson } from "@bufbuild/protobuf";
import type { Message } from "@bufbuild/protobuf";
import { file_berth_api_v1_apps } from "@berth/proto/api/v1/apps";
import { file_berth_api_v1_formation } from "@berth/proto/api/v1/formation";
import { file_berth_api_v1_identity } from "@berth/proto/api/v1/identity";
import { file_berth_api_v1_network } from "@berth/proto/api/v1/network";
import { file_berth_api_v1_processes } from "@berth/proto/api/v1/processes";
import { file_berth_type_v1_identity } from "@berth/proto/type/v1/identity";
import { file_berth_type_v1_network } from "@berth/proto/type/v1/network";
import { file_berth_type_v1_process } from "@berth/proto/type/v1/process";
import { file_berth_type_v1_release } from "@berth/proto/type/v1/release";
import { renderTable } from "./table.js";
import type { Column } from "./table.js";

/** Where a command writes: tables and lines for people, JSON for scripts. */
export interface Output {
  /** A line on stdout. */
  line(text: string): void;
  /** A line on stderr: progress and notes that must not mix with data. */
  note(text: string): void;
  /** A table on stdout, or `empty` when there are no rows. */
  table<Row>(columns: Column<Row>[], rows: readonly Row[], empty: string): void;
  /** One JSON document on stdout; protobuf messages in their canonical JSON form. */
  json(value: unknown): void;
  /** Text exactly as a remote command printed it, on the stream it printed it to. */
  passThrough(stream: "stdout" | "stderr", text: string): void;
}

/** The streams a command writes to. */
export interface OutputStreams {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

// Every message a command may print, including the shared types nested in responses.
const registry = createRegistry(
  file_berth_api_v1_apps,
  file_berth_api_v1_formation,
  file_berth_api_v1_identity,
  file_berth_api_v1_network,
  file_berth_api_v1_processes,
  file_berth_type_v1_identity,
  file_berth_type_v1_network,
  file_berth_type_v1_process,
  file_berth_type_v1_release,
);

/** Plain data for JSON: protobuf messages through their schema, anything else as is. */
export function jsonValue(value: unknown): unknown {
  if (isMessage(value)) {
    const schema = registry.getMessage((value as Message).$typeName);
    if (schema) return toJson(schema, value as Message, { registry });
  }
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, jsonValue(item)]));
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** Creates the output of one command run. */
export function createOutput(streams: OutputStreams): Output {
  return {
    line: (text) => streams.stdout.write(`${text}\n`),
    note: (text) => streams.stderr.write(`${text}\n`),
    table(columns, rows, empty) {
      streams.stdout.write(`${rows.length === 0 ? empty : renderTable(columns, rows)}\n`);
    },
    json: (value) => streams.stdout.write(`${JSON.stringify(jsonValue(value), null, 2)}\n`),
    passThrough: (stream, text) => streams[stream].write(text),
  };
}
