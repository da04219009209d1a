import { create, createRegistry, toBinary } from "@bufbuild/protobuf";
import type { DescFile, DescService, Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import * as v1 from "@berth/proto/grpc/reflection/v1/reflection";
import * as v1alpha from "@berth/proto/grpc/reflection/v1alpha/reflection";

// gRPC status codes used in reflection ErrorResponse bodies.
const NOT_FOUND = 5;
const UNIMPLEMENTED = 12;

/** The reflection services themselves, registered alongside the application's. */
export const reflectionServices: DescService[] = [v1.ServerReflection, v1alpha.ServerReflection];

interface ReflectionIndex {
  registry: Registry;
  files: Map<string, DescFile>;
  serviceNames: string[];
}

function collectFiles(file: DescFile, into: Map<string, DescFile>): void {
  if (into.has(file.proto.name)) return;
  into.set(file.proto.name, file);
  for (const dependency of file.dependencies) collectFiles(dependency, into);
}

function buildIndex(services: DescService[]): ReflectionIndex {
  const files = new Map<string, DescFile>();
  for (const service of services) collectFiles(service.file, files);
  return { registry: createRegistry(...files.values()), files, serviceNames: services.map((s) => s.typeName).sort() };
}

// A file and everything it imports, serialized: clients resolve the whole
// graph from one answer instead of one round trip per import.
function fileWithDependencies(file: DescFile): Uint8Array[] {
  const files = new Map<string, DescFile>();
  collectFiles(file, files);
  return [...files.values()].map((f) => toBinary(FileDescriptorProtoSchema, f.proto));
}

function fileContainingSymbol(index: ReflectionIndex, symbol: string): DescFile | undefined {
  const direct = index.registry.get(symbol);
  if (direct) return direct.file;
  // A method name: "pkg.Service.Method".
  const parent = symbol.slice(0, symbol.lastIndexOf("."));
  const service = index.registry.getService(parent);
  if (service?.methods.some((m) => m.name === symbol.slice(parent.length + 1))) return service.file;
  return undefined;
}

// v1 and v1alpha are the same protocol in two packages; the generated schemas
// differ only by name, so one answering function serves both.
type ReflectionModule = typeof v1 | typeof v1alpha;

function answer(module: ReflectionModule, index: ReflectionIndex, request: v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest) {
  // The two modules' request types differ only in their type name.
  const schema = module.ServerReflectionResponseSchema as typeof v1.ServerReflectionResponseSchema;
  const base = { validHost: request.host, originalRequest: request as v1.ServerReflectionRequest };
  const files = (fileDescriptorProto: Uint8Array[]) =>
    create(schema, { ...base, messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto } } });
  const error = (errorCode: number, errorMessage: string) =>
    create(schema, { ...base, messageResponse: { case: "errorResponse", value: { errorCode, errorMessage } } });
  const req = request.messageRequest;
  switch (req.case) {
    case "listServices":
      return create(schema, {
        ...base,
        messageResponse: { case: "listServicesResponse", value: { service: index.serviceNames.map((name) => ({ name })) } },
      });
    case "fileByFilename": {
      const file = index.files.get(req.value);
      return file ? files(fileWithDependencies(file)) : error(NOT_FOUND, `file ${req.value} not found`);
    }
    case "fileContainingSymbol": {
      const file = fileContainingSymbol(index, req.value);
      return file ? files(fileWithDependencies(file)) : error(NOT_FOUND, `symbol ${req.value} not found`);
    }
    case "fileContainingExtension": {
      const message = index.registry.getMessage(req.value.containingType);
      const extension = message && index.registry.getExtensionFor(message, req.value.extensionNumber);
      return extension
        ? files(fileWithDependencies(extension.file))
        : error(NOT_FOUND, `extension ${req.value.extensionNumber} of ${req.value.containingType} not found`);
    }
    case "allExtensionNumbersOfType": {
      const message = index.registry.getMessage(req.value);
      if (!message) return error(NOT_FOUND, `type ${req.value} not found`);
      const numbers: number[] = [];
      for (const type of index.registry) {
        if (type.kind === "extension" && type.extendee.typeName === message.typeName) numbers.push(type.number);
      }
      return create(schema, {
        ...base,
        messageResponse: { case: "allExtensionNumbersResponse", value: { baseTypeName: message.typeName, extensionNumber: numbers } },
      });
    }
    default:
      return error(UNIMPLEMENTED, "unsupported reflection request");
  }
}

/**
 * Registers gRPC server reflection (v1 and v1alpha) describing `services`, so
 * that grpcurl and `buf curl --reflect` can list and call them.
 */
export function registerReflection(router: ConnectRouter, services: DescService[]): void {
  const index = buildIndex([...services, ...reflectionServices]);
  const implFor = (module: ReflectionModule): ServiceImpl<typeof v1.ServerReflection> => ({
    async *serverReflectionInfo(requests) {
      for await (const request of requests) yield answer(module, index, request);
    },
  });
  router.service(v1.ServerReflection, implFor(v1));
  router.service(v1alpha.ServerReflection, implFor(v1alpha) as unknown as ServiceImpl<typeof v1alpha.ServerReflection>);
}
