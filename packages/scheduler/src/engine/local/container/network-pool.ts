import type { Logger } from "@berth/kit";
import type { BridgeNetwork } from "./bridge-network.js";

/** A network namespace made ahead of demand: on the bridge, with its address and routes, waiting for a container. */
export interface PooledNetwork {
  /** Its name under the network's prefix (see BridgeNetwork.attach). */
  namespace: string;
  address: string;
  /** What the container's spec joins (`/run/netns/...`). */
  path: string;
}

/**
 * A few ready network namespaces, so that a container start does not wait
 * for `ip` to make one: that takes two processes and many netlink calls, and
 * on a busy host it is the slowest part of a start after runc itself. A
 * namespace leaves the pool with a container and is deleted with it, never
 * returned (a fresh one carries no conntrack or neighbour state of the last
 * tenant). Namespaces the pool holds are not strays; after a restart they
 * are (nothing records them), and are removed like any other.
 */
export interface NetworkPool {
  /** A ready namespace, or undefined when none is (the caller makes its own). */
  take(): PooledNetwork | undefined;
  /**
   * Tops the pool up in the background. Called once the address of what was
   * taken is recorded elsewhere (`nextAddress` no longer hands it out).
   */
  refill(): void;
  /** The addresses the pool holds or is attaching: nobody else may have them. */
  addresses(): Set<string>;
  /** Whether a namespace is the pool's (held or being made). */
  owns(namespace: string): boolean;
  /** Resolves once the pool makes no namespace (nothing it started is still under way). */
  settled(): Promise<void>;
}

/** Names start with `_`, which no container name does: a pooled namespace never collides with one named after its container. */
export function pooledNamespace(address: string): string {
  return `_${address}`;
}

/** A pool of `size` namespaces; `nextAddress` hands out a free replica address (undefined when the subnet is full). */
export function createNetworkPool(options: { network: BridgeNetwork; size: number; nextAddress(): string | undefined; logger: Logger }): NetworkPool {
  const { network, size, logger } = options;
  const ready: PooledNetwork[] = [];
  const making = new Map<string, string>();
  let filling: Promise<void> | undefined;

  async function fill(): Promise<void> {
    while (ready.length + making.size < size) {
      const address = options.nextAddress();
      if (address === undefined) return;
      const namespace = pooledNamespace(address);
      making.set(namespace, address);
      try {
        ready.push({ namespace, address, path: await network.attach(namespace, address) });
      } catch (error) {
        // Starts still work without the pool (each makes its own namespace); the next start tries again.
        logger.warn("could not prepare a network namespace ahead of demand", { address, error });
        await network.detach(namespace).catch(() => undefined);
        return;
      } finally {
        making.delete(namespace);
      }
    }
  }

  return {
    take: () => ready.shift(),
    refill() {
      filling ??= fill().finally(() => {
        filling = undefined;
      });
    },
    addresses: () => new Set([...ready.map((entry) => entry.address), ...making.values()]),
    owns: (namespace) => making.has(namespace) || ready.some((entry) => entry.namespace === namespace),
    async settled() {
      await filling;
    },
  };
}
