import { LABEL, processObjectName, standardLabels, turnGatewayComponent } from "@berth/kit";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { GatewaySpec } from "../gateway-spec.js";

/** The field manager and managed-by label of every object the turn-allocator applies. */
export const TURN_MANAGER = "berth-turn-allocator";

/** Where coturn objects go and which image runs them. */
export interface CoturnSettings {
  namespace: string;
  image: string;
}

const DATABASE = "/var/lib/coturn/turndb";
const SECRETS_FILE = "/etc/berth-turn/secrets";

/** `<app>-<process>-turn`: the gateway's Deployment, Service and Secret. */
export function gatewayObjectName(spec: GatewaySpec): string {
  return `${processObjectName(spec.app, spec.processType)}-turn`;
}

/**
 * Copies the mounted Secret's lines into coturn's user database whenever they
 * change. Kubernetes updates a mounted Secret in place, so a rotation reaches
 * the running gateway without a restart; the grace period covers the delay.
 */
const SECRET_SYNC_SCRIPT = `last=""
while true; do
  now="$(cat ${SECRETS_FILE} 2>/dev/null)"
  if [ -n "$now" ] && [ "$now" != "$last" ]; then
    for secret in $now; do turnadmin -s "$secret" -r "$TURN_REALM" -b ${DATABASE} >/dev/null; done
    for secret in $last; do case " $(echo $now) " in *" $secret "*) ;; *) turnadmin -X "$secret" -r "$TURN_REALM" -b ${DATABASE} >/dev/null;; esac; done
    last="$now"
  fi
  sleep 5
done`;

/**
 * The coturn gateway of one rtc process on Kubernetes: a Secret with its
 * valid secrets, a one-replica Deployment (coturn plus a secret-sync
 * sidecar sharing the user database) on the host network so its relay range
 * is reachable, and a UDP (and TCP) LoadBalancer Service on its public port.
 */
export function coturnObjects(spec: GatewaySpec, settings: CoturnSettings): KubernetesObject[] {
  const name = gatewayObjectName(spec);
  // `<type>-gateway`, not the process type: the netpol service admits exactly these pods into the process's
  // (kubernetes-policies.ts), and they are never taken for the process's own pods.
  const labels = standardLabels({ app: spec.app, component: turnGatewayComponent(spec.processType), managedBy: TURN_MANAGER, team: spec.team, instance: name });
  const selector = { [LABEL.instance]: name, [LABEL.managedBy]: TURN_MANAGER };
  const metadata = { name, namespace: settings.namespace, labels };
  const args = [
    "-n",
    `--listening-port=${spec.port}`,
    `--min-port=${spec.relayRange.first}`,
    `--max-port=${spec.relayRange.last}`,
    `--realm=${spec.realm}`,
    "--use-auth-secret",
    `--userdb=${DATABASE}`,
    "--fingerprint",
    "--no-cli",
    "--no-tls",
    "--no-dtls",
    "--no-multicast-peers",
    "--denied-peer-ip=0.0.0.0-0.255.255.255",
    "--denied-peer-ip=10.0.0.0-10.255.255.255",
    "--denied-peer-ip=172.16.0.0-172.31.255.255",
    "--denied-peer-ip=192.168.0.0-192.168.255.255",
    "--denied-peer-ip=169.254.0.0-169.254.255.255",
    "--log-file=stdout",
  ];
  const volumeMounts = [{ name: "userdb", mountPath: "/var/lib/coturn" }];
  return [
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata,
      type: "Opaque",
      stringData: { secrets: spec.secrets.join("\n") },
    } as KubernetesObject,
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata,
      spec: {
        replicas: 1,
        // Two gateways must never hold the host port at once.
        strategy: { type: "Recreate" },
        selector: { matchLabels: selector },
        template: {
          metadata: { labels },
          spec: {
            hostNetwork: true,
            dnsPolicy: "ClusterFirstWithHostNet",
            containers: [
              {
                name: "coturn",
                image: settings.image,
                args,
                ports: [
                  { name: "turn-udp", containerPort: spec.port, protocol: "UDP" },
                  { name: "turn-tcp", containerPort: spec.port, protocol: "TCP" },
                ],
                readinessProbe: { tcpSocket: { port: spec.port }, periodSeconds: 5 },
                livenessProbe: { tcpSocket: { port: spec.port }, periodSeconds: 10, failureThreshold: 3 },
                resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "256Mi" } },
                volumeMounts,
              },
              {
                name: "secret-sync",
                image: settings.image,
                command: ["/bin/sh", "-c", SECRET_SYNC_SCRIPT],
                env: [{ name: "TURN_REALM", value: spec.realm }],
                resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
                volumeMounts: [...volumeMounts, { name: "secrets", mountPath: "/etc/berth-turn", readOnly: true }],
              },
            ],
            volumes: [
              { name: "userdb", emptyDir: {} },
              { name: "secrets", secret: { secretName: name, defaultMode: 0o400 } },
            ],
          },
        },
      },
    } as KubernetesObject,
    {
      apiVersion: "v1",
      kind: "Service",
      metadata,
      spec: {
        type: "LoadBalancer",
        externalTrafficPolicy: "Local",
        selector,
        ports: [
          { name: "turn-udp", port: spec.port, targetPort: spec.port, protocol: "UDP" },
          { name: "turn-tcp", port: spec.port, targetPort: spec.port, protocol: "TCP" },
        ],
      },
    } as KubernetesObject,
  ];
}
