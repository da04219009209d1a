import { createLogger, loadKubeConfig, readConfigOrExit, runUntilSignal } from "@berth/kit";
import { readRouterConfig } from "./config.js";
import { startRouter } from "./start-router.js";

const config = readConfigOrExit("router", () => readRouterConfig(process.env));
const logger = createLogger("router", { level: config.logLevel });
const kubeConfig = config.engine === "kubernetes" ? await loadKubeConfig(config.kubernetes.kubeconfigPath) : undefined;
const router = await startRouter(config, { logger, kubeConfig });
await runUntilSignal(logger, [router]);
