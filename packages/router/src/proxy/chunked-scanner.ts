/**
 * Finds where a chunked body ends without decoding it: the proxy forwards the
 * chunks byte for byte and only needs to know when the message is over.
 */

const enum State {
  Size,
  Extension,
  SizeLineFeed,
  Data,
  DataCarriageReturn,
  DataLineFeed,
  TrailerLineStart,
  TrailerLine,
  TrailerLineFeed,
  FinalLineFeed,
  Done,
}

/** A malformed chunked body. */
export class ChunkedBodyError extends Error {}

/** An incremental scanner over one chunked body. */
export class ChunkedScanner {
  private state = State.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;

  /** Whether the final chunk and trailers have been seen. */
  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Scans `chunk` from `start`; returns the index just past the end of the
   * body when it ends inside `chunk`, or -1 when all of it belongs to the body.
   */
  scan(chunk: Uint8Array, start = 0): number {
    let index = start;
    const length = chunk.length;
    while (index < length) {
      switch (this.state) {
        case State.Data: {
          const take = Math.min(this.remaining, length - index);
          this.remaining -= take;
          index += take;
          if (this.remaining === 0) this.state = State.DataCarriageReturn;
          continue;
        }
        case State.Size: {
          const byte = chunk[index]!;
          const digit = hexValue(byte);
          if (digit >= 0) {
            this.size = this.size * 16 + digit;
            this.digits++;
            if (this.digits > 12) throw new ChunkedBodyError("chunk size too large");
          } else if (this.digits > 0 && (byte === 59 || byte === 32 || byte === 9)) {
            this.state = State.Extension;
          } else if (this.digits > 0 && byte === 13) {
            this.state = State.SizeLineFeed;
          } else {
            throw new ChunkedBodyError("malformed chunk size");
          }
          break;
        }
        case State.Extension:
          if (chunk[index] === 13) this.state = State.SizeLineFeed;
          break;
        case State.SizeLineFeed:
          this.expect(chunk[index]!, 10);
          if (this.size === 0) {
            this.state = State.TrailerLineStart;
          } else {
            this.remaining = this.size;
            this.state = State.Data;
          }
          break;
        case State.DataCarriageReturn:
          this.expect(chunk[index]!, 13);
          this.state = State.DataLineFeed;
          break;
        case State.DataLineFeed:
          this.expect(chunk[index]!, 10);
          this.size = 0;
          this.digits = 0;
          this.state = State.Size;
          break;
        case State.TrailerLineStart:
          this.state = chunk[index] === 13 ? State.FinalLineFeed : State.TrailerLine;
          break;
        case State.TrailerLine:
          if (chunk[index] === 13) this.state = State.TrailerLineFeed;
          break;
        case State.TrailerLineFeed:
          this.expect(chunk[index]!, 10);
          this.state = State.TrailerLineStart;
          break;
        case State.FinalLineFeed:
          this.expect(chunk[index]!, 10);
          this.state = State.Done;
          return index + 1;
        case State.Done:
          return index;
      }
      index++;
    }
    return -1;
  }

  private expect(byte: number, wanted: number): void {
    if (byte !== wanted) throw new ChunkedBodyError("malformed chunk framing");
  }
}

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  if (byte >= 97 && byte <= 102) return byte - 87;
  if (byte >= 65 && byte <= 70) return byte - 55;
  return -1;
}
