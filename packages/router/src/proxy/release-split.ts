import type { Target } from "../route-table.js";

/** The cookie that keeps a client on the release it got first while a canary splits its process's requests. */
export const RELEASE_COOKIE = "berth-release";

/** The release a request's Cookie header names (0: none, or not a version). */
export function releaseFromCookies(cookies: string | undefined): number {
  if (cookies === undefined) return 0;
  for (const pair of cookies.split(";")) {
    const equals = pair.indexOf("=");
    if (equals < 0 || pair.slice(0, equals).trim() !== RELEASE_COOKIE) continue;
    const value = pair.slice(equals + 1).trim();
    return /^[1-9][0-9]{0,9}$/.test(value) ? Number(value) : 0;
  }
  return 0;
}

/** The Set-Cookie value that keeps a client on `release`: the host's own (no Domain), for the session. */
export function releaseCookie(release: number): string {
  return `${RELEASE_COOKIE}=${release}; Path=/; HttpOnly; SameSite=Lax`;
}

/** Which side of a split a request goes to, and the release to tell the client about (0: none). */
export interface ReleaseChoice {
  /** The release whose replicas take the request; 0 when the target is not split. */
  release: number;
  /** Set when the client's cookie does not already name `release`. */
  setCookie: number;
}

/**
 * Chooses the release of a request to a split target: the one the client's
 * cookie names while that release still has replicas, otherwise the canary
 * with the split's share of probability (`random()` in [0, 1)), otherwise
 * the serving release. A canary with no share yet (or no replica) gets no
 * request; no client is kept on a release then, nor when the target is not
 * split, nor when only the canary has replicas left.
 */
export function chooseRelease(target: Target, cookieRelease: number, random: () => number): ReleaseChoice {
  const split = target.split;
  if (split === undefined || split.serving.upstreams.length === 0) return { release: 0, setCookie: 0 };
  if (split.percent === 0 || split.canary.upstreams.length === 0) return { release: split.serving.release, setCookie: 0 };
  const known = cookieRelease === split.canary.release || cookieRelease === split.serving.release;
  const release = known ? cookieRelease : random() * 100 < split.percent ? split.canary.release : split.serving.release;
  return { release, setCookie: release === cookieRelease ? 0 : release };
}

/** The part of `target` that serves `release` (the whole target when it is not split, or that side has no replica left). */
export function releaseSide(target: Target, release: number): Target {
  const split = target.split;
  if (split === undefined || release === 0) return target;
  const side = release === split.canary.release ? split.canary : split.serving;
  return side.upstreams.length > 0 ? side : target;
}
