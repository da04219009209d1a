import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createFakeKubeApi } from "./server.js";

/**
 * `npm run fake-cluster -- --kubeconfig <path>`: runs the fake cluster on its
 * own so anyone can point kubectl or `BERTH_ENGINE=kubernetes npm start` at it
 * and watch the objects berth makes. Stops on SIGINT/SIGTERM.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { kubeconfig: { type: "string" }, port: { type: "string" } } });
  const api = await createFakeKubeApi({ ...(values.port ? { port: Number(values.port) } : {}) });
  const kubeconfig = api.kubeConfig().exportConfig();
  if (values.kubeconfig) writeFileSync(values.kubeconfig, kubeconfig, { mode: 0o600 });
  process.stdout.write(`${kubeconfig}\n`);
  process.stderr.write(`fake cluster serving at ${api.url}${values.kubeconfig ? `; kubeconfig written to ${values.kubeconfig}` : ""}\n`);
  const stop = () => void api.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

await main();
