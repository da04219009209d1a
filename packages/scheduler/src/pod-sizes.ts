import { create } from "@bufbuild/protobuf";
import { type PodSize, PodSizeSchema } from "@berth/proto/type/v1/process";

/**
 * The platform's pod sizes. Each step doubles the one before it:
 *
 * | size         | CPU (millicores) | memory (MB) |
 * |--------------|------------------|-------------|
 * | standard-1x  | 256              | 512         |
 * | standard-2x  | 512              | 1024        |
 * | standard-4x  | 1024             | 2048        |
 * | standard-8x  | 2048             | 4096        |
 * | standard-16x | 4096             | 8192        |
 */
export const POD_SIZES: readonly PodSize[] = [1, 2, 4, 8, 16].map((factor) =>
  create(PodSizeSchema, {
    name: `standard-${factor}x`,
    cpuMillis: 256 * factor,
    memoryMb: 512 * factor,
  }),
);

/** The size new process types get. */
export const DEFAULT_POD_SIZE = "standard-1x";

/** The size called `name`, or undefined when there is none. */
export function podSize(name: string): PodSize | undefined {
  return POD_SIZES.find((size) => size.name === name);
}
