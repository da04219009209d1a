import { createLogger, readConfigOrExit, runUntilSignal } from "@berth/kit";
import { KubeConfig } from "@kubernetes/client-node";
import { readRouterConfig } from "./config.js";
import { startRouter } from "./start-router.js";

const config = readConfigOrExit("router", () => readRouterConfig(process.env));
const logger = createLogger("router", { level: config.logLevel });
let kubeConfig: KubeConfig | undefined;
if (config.engine === "kubernetes") {
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
}
const router = await startRouter(config, { logger, kubeConfig });
await runUntilSignal(logger, [router]);
