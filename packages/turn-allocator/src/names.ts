import { randomInt } from "node:crypto";
import { replicaHostname } from "@berth/kit";

const TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const TOKEN_LENGTH = 10;

/**
 * A route token: random (CSPRNG), DNS-safe, starting with a letter so that
 * `<token>-01` is never mistaken for a number. 26 * 36^9 tokens make a
 * collision (refused by the store's unique constraint) vanishingly rare.
 */
export function newRouteToken(): string {
  let token = TOKEN_ALPHABET[randomInt(26)]!;
  while (token.length < TOKEN_LENGTH) token += TOKEN_ALPHABET[randomInt(TOKEN_ALPHABET.length)];
  return token;
}

/** The public TURN hostname of an rtc process: `<token>.turn.<domain>`. */
export function turnHostname(routeToken: string, platformDomain: string): string {
  return `${routeToken}.turn.${platformDomain}`;
}

/** The hostnames of replicas 1..replicas, in order. */
export function replicaHostnames(routeToken: string, replicas: number, platformDomain: string): string[] {
  return Array.from({ length: replicas }, (_, index) => replicaHostname(routeToken, index + 1, platformDomain));
}
