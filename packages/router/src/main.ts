import { ConfigError, createLogger, runUntilSignal } from "@berth/kit";
import { KubeConfig } from "@kubernetes/client-node";
import { readRouterConfig } from "./config.js";
import type { RouterConfig } from "./config.js";
import { startRouter } from "./start-router.js";

let config: RouterConfig;
try {
  config = readRouterConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`router: ${error.message}`);
  process.exit(1);
}
const logger = createLogger("router", { level: config.logLevel });
let kubeConfig: KubeConfig | undefined;
if (config.engine === "kubernetes") {
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
}
const router = await startRouter(config, { logger, kubeConfig });
await runUntilSignal(logger, [router]);
