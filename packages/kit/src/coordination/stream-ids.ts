import { Code, ConnectError } from "@connectrpc/connect";
import { invalidArgument } from "../errors.js";

/** A stream event id split into its parts. */
export interface StreamId {
  milliseconds: number;
  sequence: number;
}

const STREAM_ID = /^(\d{1,15})-(\d{1,15})$/;

/** The id before every event: subscribing after it expects the sequence to start at 1. */
export const STREAM_START_ID = "0-0";

/** Parses `<milliseconds>-<sequence>`; undefined for anything else. */
export function parseStreamId(id: string): StreamId | undefined {
  const match = STREAM_ID.exec(id);
  if (!match) return undefined;
  return { milliseconds: Number(match[1]), sequence: Number(match[2]) };
}

/** Formats an id; the inverse of parseStreamId. */
export function formatStreamId({ milliseconds, sequence }: StreamId): string {
  return `${milliseconds}-${sequence}`;
}

/** Negative, zero or positive as `a` orders before, with or after `b`. */
export function compareStreamIds(a: StreamId, b: StreamId): number {
  return a.milliseconds - b.milliseconds || a.sequence - b.sequence;
}

/**
 * The id that follows `last`: never earlier than `nowMs` and one sequence number
 * further, so ids increase strictly and the sequence numbers every event ever
 * published (which is what makes a gap detectable).
 */
export function nextStreamId(last: StreamId, nowMs: number): StreamId {
  return { milliseconds: Math.max(nowMs, last.milliseconds), sequence: last.sequence + 1 };
}

/** Checks SubscribeOptions.after: `"$"`, `"0"` or an event id. */
export function checkStreamPosition(after: string): void {
  if (after !== "$" && after !== "0" && !parseStreamId(after)) {
    throw invalidArgument("after", 'must be "$", "0" or an event id such as "1700000000000-42"');
  }
}

/** The error a subscriber gets when events it had not read were trimmed or lost. */
export function streamGapError(stream: string, after: string, next: string): ConnectError {
  return new ConnectError(
    `events of stream "${stream}" between ${after} and ${next} are no longer retained; resynchronise and subscribe again`,
    Code.OutOfRange,
  );
}
