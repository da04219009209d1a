/**
 * `@berth/router/testing`: clients for the router's proxy in other packages'
 * tests (the API's whole-platform ones): plain HTTP, WebSocket echo and HTTPS
 * checked against a CA.
 */
export { echo, openUpgrade, request } from "./http-client.js";
export type { TestResponse } from "./http-client.js";
export { httpsGet } from "./https-client.js";
