import { hostnameProblem, isWildcardHostname } from "@berth/kit";

/** What the platform allows as a custom domain. */
export interface DomainPolicy {
  /** Hostnames under it belong to the platform's own routes. */
  platformDomain: string;
  /** Whether `*.example.com` may be attached. */
  allowWildcards: boolean;
}

/**
 * Why `hostname` (already normalized) cannot be attached as a custom domain,
 * or undefined when it can: a fully qualified name (the kit's rule), a
 * wildcard only when the platform allows them, and not under the platform
 * domain.
 */
export function customDomainProblem(hostname: string, policy: DomainPolicy): string | undefined {
  const problem = hostnameProblem(hostname);
  if (problem !== undefined) return problem;
  if (isWildcardHostname(hostname) && !policy.allowWildcards) return "wildcard domains are not allowed on this platform";
  const platform = policy.platformDomain;
  if (hostname === platform || hostname.endsWith(`.${platform}`)) {
    return `names under ${platform} belong to the platform's own routes`;
  }
  return undefined;
}
