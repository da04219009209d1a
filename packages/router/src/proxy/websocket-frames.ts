/** WebSocket close code 1001: the endpoint is going away (RFC 6455 7.4.1). */
export const GOING_AWAY = 1001;

/** A close frame as a server sends it (unmasked), with a status code and a short reason. */
export function closeFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason.slice(0, 120));
  const frame = Buffer.alloc(4 + text.length);
  frame[0] = 0x88; // FIN + opcode 8 (close)
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}

/**
 * Follows the frame boundaries of one direction of a WebSocket (the
 * replica's frames to the client), so that the proxy can end a tunnel
 * between two frames with a close frame of its own instead of cutting a
 * frame in half. It reads only frame headers; payloads are skipped.
 */
export class WebSocketFrames {
  private header: number[] = [];
  private payloadLeft = 0;
  /** A close frame went through: the endpoints are closing the socket themselves. */
  closeSeen = false;

  /** Whether the bytes seen so far end exactly at the end of a frame. */
  get atBoundary(): boolean {
    return this.header.length === 0 && this.payloadLeft === 0;
  }

  /**
   * Reads `chunk`. With `stopAtBoundary`, stops at the first frame boundary
   * and returns its offset in `chunk` (0 when the chunk starts at one), or -1
   * when the chunk ends inside a frame; otherwise reads it all and returns its length.
   */
  scan(chunk: Buffer, stopAtBoundary: boolean): number {
    let offset = 0;
    while (offset < chunk.length) {
      if (stopAtBoundary && this.atBoundary) return offset;
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, chunk.length - offset);
        this.payloadLeft -= take;
        offset += take;
        continue;
      }
      this.header.push(chunk[offset++]!);
      if (this.header.length === headerLength(this.header)) this.startPayload();
    }
    if (!stopAtBoundary) return offset;
    return this.atBoundary ? offset : -1;
  }

  private startPayload(): void {
    const header = this.header;
    if ((header[0]! & 0x0f) === 0x8) this.closeSeen = true;
    const short = header[1]! & 0x7f;
    let length = short;
    if (short === 126) length = (header[2]! << 8) | header[3]!;
    else if (short === 127) {
      length = 0;
      for (let i = 2; i < 10; i++) length = length * 256 + header[i]!;
    }
    this.header = [];
    this.payloadLeft = length;
  }
}

// The header's full length once its first two bytes are known: 2, plus 2 or 8 for an extended length, plus 4 for a mask.
function headerLength(header: readonly number[]): number {
  if (header.length < 2) return Number.POSITIVE_INFINITY;
  const short = header[1]! & 0x7f;
  return 2 + (short === 126 ? 2 : short === 127 ? 8 : 0) + (header[1]! & 0x80 ? 4 : 0);
}
