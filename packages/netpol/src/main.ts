import { createLogger, loadKubeConfig, readConfigOrExit, runUntilSignal } from "@berth/kit";
import { readNetpolConfig } from "./config.js";
import { startNetpol } from "./start-netpol.js";

const config = readConfigOrExit("netpol", () => readNetpolConfig(process.env));
const logger = createLogger("netpol", { level: config.logLevel });
const kubeConfig = config.engine === "kubernetes" ? await loadKubeConfig(config.kubernetes.kubeconfigPath) : undefined;
await runUntilSignal(logger, [await startNetpol(config, { logger, kubeConfig })]);
