import test from "ava";
import { WebSocketFrames, closeFrame } from "../src/proxy/websocket-frames.js";

const frame = (opcode: number, payload: Buffer, masked = false) => {
  const length = payload.length;
  const header =
    length < 126
      ? Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | length])
      : length < 65536
        ? Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | 126, length >> 8, length & 0xff])
        : Buffer.concat([
            Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | 127]),
            Buffer.from([0, 0, 0, 0, 0, length >> 16, (length >> 8) & 0xff, length & 0xff]),
          ]);
  return Buffer.concat([header, masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0), payload]);
};

test("frame boundaries are found across chunks, for short, 16-bit, 64-bit and masked lengths", (t) => {
  const frames = [frame(1, Buffer.from("hi")), frame(2, Buffer.alloc(300, 7)), frame(2, Buffer.alloc(70_000, 1)), frame(1, Buffer.from("masked"), true)];
  const stream = Buffer.concat(frames);
  const ends = new Set<number>();
  let end = 0;
  for (const one of frames) ends.add((end += one.length));
  // Fed one odd-sized chunk at a time, the tracker is at a boundary exactly where a frame ends.
  const tracker = new WebSocketFrames();
  for (let offset = 0; offset < stream.length; offset += 7) {
    const chunk = stream.subarray(offset, offset + 7);
    tracker.scan(chunk, false);
    const position = offset + chunk.length;
    t.is(tracker.atBoundary, ends.has(position), `at byte ${position}`);
  }
  t.false(tracker.closeSeen);
});

test("stopping at a boundary returns where the current frame ends, or -1 inside it; a close frame is noticed", (t) => {
  const first = frame(1, Buffer.from("hello"));
  const tracker = new WebSocketFrames();
  tracker.scan(first.subarray(0, 3), false);
  t.is(tracker.scan(first.subarray(3, 5), true), -1, "still inside the frame");
  t.is(tracker.scan(Buffer.concat([first.subarray(5), frame(1, Buffer.from("next"))]), true), first.length - 5);
  t.is(new WebSocketFrames().scan(first, true), 0, "at a boundary already: nothing more is let through");
  const closing = new WebSocketFrames();
  closing.scan(closeFrame(1001, "bye"), false);
  t.true(closing.closeSeen);
  t.deepEqual([...closeFrame(1001, "bye").subarray(0, 4)], [0x88, 5, 0x03, 0xe9]);
});
