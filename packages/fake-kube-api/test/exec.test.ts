import test from "ava";
import { Writable } from "node:stream";
import { Exec, KubernetesObjectApi, PatchStrategy, type KubernetesObject, type V1Status } from "@kubernetes/client-node";
import { createFakeKubeApi, kubectlFor } from "../src/index.js";

type Json = Record<string, any>;

/** A running pod of a Deployment whose container reads a Secret, its own name and a literal variable. */
async function runningPod(t: { teardown(fn: () => unknown): void }) {
  const api = await createFakeKubeApi();
  t.teardown(() => api.close());
  const client = KubernetesObjectApi.makeApiClient(api.kubeConfig());
  const apply = (object: Json) => client.patch(object as KubernetesObject, undefined, undefined, "test", true, PatchStrategy.ServerSideApply);
  await apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "config", namespace: "apps" },
    data: { GREETING: Buffer.from("hello").toString("base64") },
  });
  await apply({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "apps" },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          containers: [
            {
              name: "web",
              image: "web:v1",
              envFrom: [{ secretRef: { name: "config" } }],
              env: [
                { name: "PORT", value: "5000" },
                { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
              ],
            },
          ],
        },
      },
    },
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const pod = api.objects({ kind: "Pod", namespace: "apps" }).find((candidate: Json) => candidate.status?.containerStatuses?.[0]?.state?.running) as
      | Json
      | undefined;
    if (pod !== undefined) return { api, pod: pod.metadata.name as string };
    if (Date.now() > deadline) throw new Error("no running pod");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("kubectl exec runs a command in the pod's environment over the WebSocket protocol, with stdin, and exits with its code", async (t) => {
  const { api, pod } = await runningPod(t);
  const kubectl = kubectlFor(api);
  t.teardown(() => kubectl.dispose());

  const ran = await kubectl.run(["exec", "-n", "apps", pod, "--", "sh", "-c", 'echo "$GREETING from $POD on $PORT"; echo oops >&2; exit 3']);
  t.is(ran.stdout, `hello from ${pod} on 5000\n`);
  t.true(ran.stderr.includes("oops"), ran.stderr);
  t.is(ran.code, 3, "kubectl exits with the command's code, read from the error channel's Status");

  const piped = await kubectl.run(["exec", "-i", "-n", "apps", pod, "--", "sh", "-c", "tr a-z A-Z > upper; cat upper"], "shout\n");
  t.is(piped.stdout, "SHOUT\n", "stdin reaches the command and its end closes it (v5 close frame)");
  t.is(piped.code, 0);
  const again = await kubectl.run(["exec", "-n", "apps", pod, "--", "cat", "upper"]);
  t.is(again.stdout, "SHOUT\n", "the pod's scratch directory persists between execs, as a container's filesystem does");

  const missing = await kubectl.run(["exec", "-n", "apps", pod, "-c", "sidecar", "--", "true"]);
  t.not(missing.code, 0);
  t.true(missing.stderr.includes("container sidecar is not valid"), missing.stderr);
});

test("client-node's Exec streams stdout and reports the exit code in its Status", async (t) => {
  const { api, pod } = await runningPod(t);
  const chunks: Buffer[] = [];
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  const status = await new Promise<V1Status>((resolve, reject) => {
    new Exec(api.kubeConfig()).exec("apps", pod, "web", ["sh", "-c", "echo one; echo two; exit 7"], stdout, null, null, false, resolve).catch(reject);
  });
  t.is(Buffer.concat(chunks).toString(), "one\ntwo\n");
  t.is(status.status, "Failure");
  t.is(status.reason, "NonZeroExitCode");
  t.deepEqual(status.details?.causes, [{ reason: "ExitCode", message: "7" }]);

  const plain = await fetch(`${api.url}/api/v1/namespaces/apps/pods/${pod}/exec?command=true&stdout=true`, { method: "POST" });
  t.is(plain.status, 400, "exec without an upgrade is refused as a real server refuses it");
  t.is(((await plain.json()) as Json).message, "Upgrade request required");
});
