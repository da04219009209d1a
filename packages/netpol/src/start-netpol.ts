import type { Client } from "@connectrpc/connect";
import { createInternalClient, createLogger, loadKubeConfig, maskedConfig, openDatabase, serve, startServer } from "@berth/kit";
import type { Database, Logger } from "@berth/kit";
import { NetpolService } from "@berth/proto/netpol/v1/netpol";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { KubeConfig } from "@kubernetes/client-node";
import { startAppFeed } from "./app-feed.js";
import { createAppLookup } from "./app-lookup.js";
import type { NetpolConfig } from "./config.js";
import { createLocalPolicyCache, createLocalPolicyHandler } from "./local-policy-handler.js";
import { changesNothing, withAppChanges } from "./model-changes.js";
import { createPolicyState } from "./policy-state.js";
import type { PolicyState } from "./policy-state.js";
import { netpolMigrations } from "./store/migrations.js";
import { createNetpolStore } from "./store/netpol-store.js";
import { createTrustHandlers } from "./trust-handlers.js";
import { createDetachedPolicyEngine, createKubernetesPolicyEngine } from "./engine/kubernetes-policy-engine.js";
import { createKubernetesExplainer } from "./explain/kubernetes-explainer.js";
import { createLocalExplainer } from "./explain/local-explainer.js";
import { classOf } from "./explain/reachability.js";
import { createPolicyHandlers } from "./policy-handlers.js";
import { startPolicyReconciler } from "./policy-reconciler.js";

/** Collaborators a caller may provide instead of the ones built from the configuration. */
export interface NetpolDeps {
  logger?: Logger;
  /** An open, migrated database; otherwise one is opened from the configuration. */
  database?: Database;
  /** The Postgres schema when the database is opened here (default `netpol`); tests give each run its own. */
  schema?: string;
  /** The scheduler's apps; otherwise an internal client to `schedulerUrl`. */
  scheduler?: Pick<Client<typeof SchedulerService>, "watchApps" | "getApp">;
  /** The cluster, for the kubernetes engine; otherwise KUBECONFIG, in-cluster credentials or ~/.kube/config. */
  kubeConfig?: KubeConfig;
}

/** A running netpol service. */
export interface RunningNetpol {
  readonly url: string;
  readonly port: number;
  /** Resolves once the scheduler's first app snapshot is recorded. */
  readonly ready: Promise<void>;
  /** The live model, for tests and the all-in-one launcher. */
  readonly state: PolicyState;
  /** Stops the feed and the server, letting unary calls finish for up to `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

const CALL_TIMEOUT_MS = 10_000;

/** Whether processes of a class listen on $PORT. */
const listens = (routingClass: RoutingClass) => routingClass === RoutingClass.WEB || routingClass === RoutingClass.TCP || routingClass === RoutingClass.RTC;

/** Starts netpol: store, model, the scheduler's app feed and NetpolService. */
export async function startNetpol(config: NetpolConfig, deps: NetpolDeps = {}): Promise<RunningNetpol> {
  const logger = deps.logger ?? createLogger("netpol", { level: config.logLevel });
  logger.info("starting netpol", maskedConfig({ ...config, kubernetes: JSON.stringify(config.kubernetes) }));
  const database =
    deps.database ??
    (await openDatabase({
      service: "netpol",
      schema: deps.schema ?? "netpol",
      migrations: netpolMigrations,
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      logger,
    }));
  const closers: ((graceMs?: number) => Promise<void> | void)[] = [];
  if (!deps.database) closers.push(() => database.close());
  try {
    const store = createNetpolStore(database);
    const state = createPolicyState(await store.load());
    const settings = { namespaceBase: config.kubernetes.namespace, ingress: config.kubernetes.ingress, containerPort: config.kubernetes.containerPort };
    const localPolicy = createLocalPolicyCache();
    const kubernetes = config.engine === "kubernetes";
    // Like the scheduler's: the given KubeConfig, else KUBECONFIG, else in-cluster credentials or ~/.kube/config.
    const engine = kubernetes
      ? createKubernetesPolicyEngine({ kubeConfig: deps.kubeConfig ?? (await loadKubeConfig(config.kubernetes.kubeconfigPath)) }, settings)
      : createDetachedPolicyEngine(settings);
    const scheduler = deps.scheduler ?? createInternalClient(SchedulerService, { baseUrl: config.schedulerUrl, token: config.internalToken });
    const server = await startServer({
      name: "netpol",
      host: config.host,
      port: config.port,
      internalToken: config.internalToken,
      maxMessageBytes: config.maxMessageBytes,
      services: [
        serve(NetpolService, {
          ...createTrustHandlers({ state, store, lookup: createAppLookup(scheduler), callTimeoutMs: CALL_TIMEOUT_MS }),
          ...createLocalPolicyHandler(state, localPolicy),
          ...createPolicyHandlers({
            state,
            explainer: kubernetes ? createKubernetesExplainer(settings) : createLocalExplainer(localPolicy),
            portOf: kubernetes
              ? (app, type) => (listens(classOf(app, type)) ? settings.containerPort : 0)
              : (app, type) => app.processes.find((process) => process.processType === type)?.port ?? 0,
            engine,
            settings,
            canApply: kubernetes,
          }),
        }),
      ],
      logger,
    });
    closers.push((graceMs) => server.close(graceMs));
    const feed = startAppFeed({
      scheduler,
      logger: logger.child({ component: "app-feed" }),
      apply: (changes) =>
        state.update(async (model) =>
          changesNothing(model, changes)
            ? { result: undefined }
            : { model: withAppChanges(model, changes), version: await store.applyAppChanges(changes), result: undefined },
        ),
    });
    closers.push(() => feed.close());
    if (kubernetes) {
      const reconciler = startPolicyReconciler({ state, engine, settings, logger: logger.child({ component: "reconciler" }), resyncMs: config.resyncMs });
      closers.push(() => reconciler.close());
    }
    logger.info("netpol ready", { url: server.url, engine: config.engine });
    return {
      url: server.url,
      port: server.port,
      ready: feed.ready,
      state,
      async close(graceMs) {
        for (const close of closers.reverse()) await close(graceMs);
      },
    };
  } catch (error) {
    for (const close of closers.reverse()) await close();
    throw error;
  }
}
