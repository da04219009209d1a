import test from "ava";
import { POD_SIZES, podSize } from "../src/pod-sizes.js";

test("the size table runs from standard-1x to standard-16x, doubling each step", (t) => {
  t.deepEqual(
    POD_SIZES.map((size) => [size.name, size.cpuMillis, size.memoryMb]),
    [
      ["standard-1x", 256, 512],
      ["standard-2x", 512, 1024],
      ["standard-4x", 1024, 2048],
      ["standard-8x", 2048, 4096],
      ["standard-16x", 4096, 8192],
    ],
  );
});

test("podSize finds a size by name and nothing else", (t) => {
  t.is(podSize("standard-2x")?.memoryMb, 1024);
  t.is(podSize("huge-9x"), undefined);
  t.is(podSize("standard-3x"), undefined);
});
