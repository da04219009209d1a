/**
 * `@berth/turn-allocator/testing`: TURN clients for other packages' tests
 * (the API's whole-platform ones): coturn's uclient, signed credentials, free
 * port blocks, and the certificate a gateway presents.
 */
export { freePortBlock, signedCredentials, tlsPeerCertificate, uclient, waitForListening } from "./turn-client.js";
export type { UclientResult } from "./turn-client.js";
