import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";

/**
 * An independent gRPC client (@grpc/grpc-js, not Connect) built from a
 * protobuf-es service descriptor, to prove berth speaks plain gRPC.
 */
export interface GrpcJsClient {
  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethod & { input: I; output: O },
    input: MessageInitShape<I>,
    metadata?: Record<string, string>,
  ): Promise<MessageShape<O>>;
  serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethod & { input: I; output: O },
    input: MessageInitShape<I>,
    metadata?: Record<string, string>,
  ): AsyncIterable<MessageShape<O>> & { cancel(): void };
  close(): void;
}

function toMetadata(values: Record<string, string> = {}): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(values)) metadata.set(key, value);
  return metadata;
}

function path(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Connects to host:port (no scheme) in plaintext. */
export function createGrpcJsClient(address: string, _service?: DescService): GrpcJsClient {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return {
    unary(method, input, metadata) {
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          path(method),
          (message: MessageShape<typeof method.input>) => Buffer.from(toBinary(method.input, message)),
          (bytes: Buffer) => fromBinary(method.output, bytes),
          create(method.input, input),
          toMetadata(metadata),
          { deadline: Date.now() + 10_000 },
          (error, value) => (error ? reject(error) : resolve(value!)),
        );
      });
    },
    serverStream(method, input, metadata) {
      const call = client.makeServerStreamRequest(
        path(method),
        (message: MessageShape<typeof method.input>) => Buffer.from(toBinary(method.input, message)),
        (bytes: Buffer) => fromBinary(method.output, bytes),
        create(method.input, input),
        toMetadata(metadata),
      );
      return Object.assign(call as AsyncIterable<MessageShape<typeof method.output>>, { cancel: () => call.cancel() });
    },
    close: () => client.close(),
  };
}
