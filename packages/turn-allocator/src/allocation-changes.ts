import type { EventStreams, Logger } from "@berth/kit";

/** The coordination stream every allocator instance announces allocation changes on; the payload is the app. */
export const ALLOCATION_CHANGES_STREAM = "turn-allocator:allocation-changes";

/** Announces that an app's allocations changed. */
export function announceAllocationChange(events: EventStreams, app: string): Promise<void> {
  return events.publish(ALLOCATION_CHANGES_STREAM, app).then(() => undefined);
}

/**
 * Calls `onChange` with the app of every change announced after the call, by
 * any instance, until `signal` aborts. A subscription that breaks (Redis gone,
 * fell behind the stream) is resumed, and `onChange` gets "" meaning "anything
 * may have changed": the caller resynchronises everything.
 */
export async function followAllocationChanges(events: EventStreams, signal: AbortSignal, logger: Logger, onChange: (app: string) => void): Promise<void> {
  while (!signal.aborted) {
    try {
      for await (const event of events.subscribe(ALLOCATION_CHANGES_STREAM, { signal })) onChange(new TextDecoder().decode(event.payload));
    } catch (error) {
      if (signal.aborted) return;
      logger.warn("allocation change stream broke; resubscribing", { error });
      onChange("");
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}
