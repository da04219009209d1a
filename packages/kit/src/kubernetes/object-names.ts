/**
 * The name of a process type's objects on Kubernetes, `<app>-<type>`: the
 * scheduler's Deployment, Service and HorizontalPodAutoscaler and the
 * router's Ingress of the same process share it, which is how an Ingress
 * finds its Service.
 */
export function processObjectName(app: string, processType: string): string {
  return `${app}-${processType}`;
}
