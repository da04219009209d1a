import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import type { Cluster } from "./cluster/runtime.js";
import { field, isJsonObject, type JsonObject } from "./patch.js";
import { StatusError } from "./status.js";

/*
 * The pod exec subresource. The protocol is the real one, so kubectl exec and
 * @kubernetes/client-node's Exec work unmodified: a WebSocket upgrade of
 * GET/POST /api/v1/namespaces/{ns}/pods/{name}/exec?command=…&container=…
 * &stdin=…&stdout=…&stderr=…, subprotocol v5.channel.k8s.io or
 * v4.channel.k8s.io, binary frames whose first byte is the channel
 * (0 stdin, 1 stdout, 2 stderr, 3 the final Status, 255 + channel closes a
 * stream in v5), the Status carrying a non-zero exit code as a
 * NonZeroExitCode cause. The pods themselves are simulations with no
 * container, so the command is a simulation too: it runs on the host, as the
 * fake cluster's user, in a scratch directory of the pod's own (which
 * survives between execs, as a container's filesystem would), with the
 * container's environment as the kubelet would build it (literal values,
 * envFrom and secretKeyRef Secrets, the downward API's pod fields, HOSTNAME)
 * and the host's PATH where the pod sets none. No TTY, no $(VAR) expansion.
 */

/** The subprotocols served, newest first; a client offering neither is refused. */
const PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const CLOSE = 255;

/** The path of the exec subresource: namespace and pod, or undefined for any other path. */
export function execRoute(path: string): { namespace: string; pod: string } | undefined {
  const match = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(path);
  return match ? { namespace: decodeURIComponent(match[1]!), pod: decodeURIComponent(match[2]!) } : undefined;
}

/** The value of a downward API field of the pod. */
function podField(pod: JsonObject, path: string): string {
  const labels = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (labels) return String((field(pod, "metadata", labels[1]!) as Record<string, string> | undefined)?.[labels[2]!] ?? "");
  const value = field(pod, ...path.split("."));
  return typeof value === "string" ? value : "";
}

/** The environment the container's processes get, as the kubelet builds it from the spec. */
export function containerEnvironment(cluster: Cluster, pod: JsonObject, container: JsonObject): Record<string, string> {
  const namespace = String(field(pod, "metadata", "namespace"));
  const secretData = (name: string): Record<string, string> => {
    const data = field(cluster.get(cluster.kinds.secret, namespace, name) ?? {}, "data");
    const decoded: Record<string, string> = {};
    if (isJsonObject(data)) for (const [key, value] of Object.entries(data)) decoded[key] = Buffer.from(String(value), "base64").toString();
    return decoded;
  };
  const env: Record<string, string> = { HOSTNAME: String(field(pod, "metadata", "name")) };
  for (const source of (container.envFrom as JsonObject[] | undefined) ?? []) {
    const ref = source.secretRef as JsonObject | undefined;
    if (ref === undefined) continue;
    for (const [key, value] of Object.entries(secretData(String(ref.name)))) env[`${source.prefix ?? ""}${key}`] = value;
  }
  for (const variable of (container.env as JsonObject[] | undefined) ?? []) {
    const name = String(variable.name);
    const from = variable.valueFrom as JsonObject | undefined;
    const fieldRef = from?.fieldRef as JsonObject | undefined;
    const secretRef = from?.secretKeyRef as JsonObject | undefined;
    if (fieldRef) env[name] = podField(pod, String(fieldRef.fieldPath));
    else if (secretRef) env[name] = secretData(String(secretRef.name))[String(secretRef.key)] ?? "";
    else env[name] = String(variable.value ?? "");
  }
  if (env.PATH === undefined) env.PATH = process.env.PATH ?? "/usr/bin:/bin";
  return env;
}

/** The container an exec request names, checked as the API server and kubelet check it. */
function execTarget(cluster: Cluster, namespace: string, name: string, query: URLSearchParams) {
  const pod = cluster.get(cluster.kinds.pod, namespace, name);
  if (pod === undefined) throw new StatusError("NotFound", `pods "${name}" not found`, { kind: "pods", name });
  const command = query.getAll("command");
  if (command.length === 0) throw new StatusError("BadRequest", "you must specify at least 1 command");
  const streams = { stdin: query.get("stdin") === "true", stdout: query.get("stdout") === "true", stderr: query.get("stderr") === "true" };
  if (!streams.stdin && !streams.stdout && !streams.stderr) throw new StatusError("BadRequest", "you must specify at least one of stdin, stdout, stderr");
  if (query.get("tty") === "true") throw new StatusError("BadRequest", "the fake cluster's exec simulation has no TTY");
  const containers = (field(pod, "spec", "containers") as JsonObject[] | undefined) ?? [];
  const wanted = query.get("container");
  if (!wanted && containers.length > 1) {
    throw new StatusError("BadRequest", `a container name must be specified for pod ${name}, choose one of: [${containers.map((c) => c.name).join(" ")}]`);
  }
  const container = wanted ? containers.find((candidate) => candidate.name === wanted) : containers[0];
  if (container === undefined) throw new StatusError("BadRequest", `container ${wanted} is not valid for pod ${name}`);
  const statuses = (field(pod, "status", "containerStatuses") as JsonObject[] | undefined) ?? [];
  const running = statuses.find((status) => status.name === container.name && isJsonObject(field(status, "state", "running")));
  if (running === undefined) throw new StatusError("BadRequest", `unable to upgrade connection: container not found ("${String(container.name)}")`);
  return { pod, container, command, streams };
}

/** The Status of the error channel, as the kubelet words it: the exit code of a failed command is its NonZeroExitCode cause. */
function exitStatus(command: string[], code: number): object {
  if (code === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${command.join(" ")}], exit code ${code}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(code) }] },
  };
}

/** Answers an upgrade that cannot be served with the Status a real server sends, then hangs up. */
function refuse(socket: Duplex, error: unknown): void {
  const status = error instanceof StatusError ? error.status : new StatusError("InternalError", String(error)).status;
  const body = JSON.stringify(status);
  socket.end(
    `HTTP/1.1 ${status.code} ${status.reason ?? "Error"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Serves exec upgrades for the pods of `cluster`; each pod's scratch directory is under `scratchRoot`. */
export function createExecServer(cluster: Cluster | undefined, scratchRoot: string) {
  const sockets = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => PROTOCOLS.find((protocol) => offered.has(protocol)) ?? false,
  });
  return {
    upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, namespace: string, name: string, query: URLSearchParams): void {
      let target: ReturnType<typeof execTarget>;
      try {
        if (cluster === undefined) throw new StatusError("BadRequest", "exec needs the simulated kubelet (controllers: true)");
        // The request is checked first: kubectl retries a refused WebSocket upgrade over SPDY and shows that answer.
        target = execTarget(cluster, namespace, name, query);
        if (request.headers.upgrade?.toLowerCase() !== "websocket")
          throw new StatusError("BadRequest", "the fake cluster serves exec over WebSocket only, not SPDY");
        const offered = String(request.headers["sec-websocket-protocol"] ?? "")
          .split(",")
          .map((protocol) => protocol.trim());
        if (!offered.some((protocol) => PROTOCOLS.includes(protocol))) {
          throw new StatusError("BadRequest", `none of the offered subprotocols is served: ${PROTOCOLS.join(", ")}`);
        }
      } catch (error) {
        refuse(socket, error);
        return;
      }
      sockets.handleUpgrade(request, socket, head, (ws) => {
        const directory = join(scratchRoot, namespace, name);
        mkdirSync(directory, { recursive: true });
        const env = { ...containerEnvironment(cluster!, target.pod, target.container), HOME: directory };
        const child = spawn(target.command[0]!, target.command.slice(1), { cwd: directory, env, stdio: "pipe" });
        const send = (channel: number, data: Buffer | string) => ws.send(Buffer.concat([Buffer.from([channel]), Buffer.from(data)]));
        // As the API server does: an empty frame on the lowest writable channel says the streams are open.
        send(target.streams.stdout ? STDOUT : target.streams.stderr ? STDERR : ERROR, "");
        child.stdout.on("data", (chunk: Buffer) => target.streams.stdout && send(STDOUT, chunk));
        child.stderr.on("data", (chunk: Buffer) => target.streams.stderr && send(STDERR, chunk));
        child.stdin.on("error", () => undefined);
        if (!target.streams.stdin) child.stdin.end();
        ws.on("message", (message: Buffer) => {
          if (message[0] === STDIN) child.stdin.write(message.subarray(1));
          else if (message[0] === CLOSE && message[1] === STDIN) child.stdin.end();
        });
        // The caller hung up: the command goes, as it does when the API server's stream ends.
        ws.on("close", () => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"));
        let failed: string | undefined;
        child.on("error", (error) => (failed = `failed to run [${target.command.join(" ")}]: ${error.message}`));
        child.on("close", (code, signal) => {
          const status =
            failed !== undefined
              ? { metadata: {}, status: "Failure", message: failed, reason: "InternalError" }
              : exitStatus(target.command, code ?? 128 + (signal === "SIGKILL" ? 9 : 15));
          send(ERROR, JSON.stringify(status));
          ws.close(1000);
        });
      });
    },
    close: () => sockets.close(),
  };
}
