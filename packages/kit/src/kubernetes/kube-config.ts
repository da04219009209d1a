import type { KubeConfig } from "@kubernetes/client-node";

/**
 * The cluster credentials of the kubernetes engine: the file at `path`
 * (KUBECONFIG), else the defaults (in-cluster credentials or ~/.kube/config).
 * The client library loads only here, so the local engine never pays for it.
 */
export async function loadKubeConfig(path: string | undefined): Promise<KubeConfig> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kubeConfig = new KubeConfig();
  if (path !== undefined) kubeConfig.loadFromFile(path);
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}
