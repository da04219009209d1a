import { createHash, createHmac, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import type { Socket } from "node:dgram";

const MAGIC_COOKIE = 0x2112a442;
const ALLOCATE = 0x0003;
const REFRESH = 0x0004;
const SUCCESS = 0x0100;
const ATTRIBUTE = { username: 0x0006, messageIntegrity: 0x0008, errorCode: 0x0009, lifetime: 0x000d, realm: 0x0014, nonce: 0x0015, requestedTransport: 0x0019 };

/** A TURN answer: success, or the STUN error code (401 unauthorized, 437 allocation mismatch, 438 stale nonce). */
interface Answer {
  ok: boolean;
  errorCode: number;
  attributes: Map<number, Buffer>;
}

function attribute(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(value.length, 2);
  return Buffer.concat([header, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

/** A STUN request; with `key`, it ends in MESSAGE-INTEGRITY (HMAC-SHA1 over the message whose length already counts it). */
function request(method: number, attributes: Buffer[], key?: Buffer): Buffer {
  const header = Buffer.alloc(20);
  header.writeUInt16BE(method, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  randomBytes(12).copy(header, 8);
  const body = Buffer.concat(attributes);
  header.writeUInt16BE(body.length + (key ? 24 : 0), 2);
  if (!key) return Buffer.concat([header, body]);
  const integrity = createHmac("sha1", key)
    .update(Buffer.concat([header, body]))
    .digest();
  return Buffer.concat([header, body, attribute(ATTRIBUTE.messageIntegrity, integrity)]);
}

function parse(message: Buffer): Answer {
  const attributes = new Map<number, Buffer>();
  for (let offset = 20; offset + 4 <= message.length; ) {
    const type = message.readUInt16BE(offset);
    const length = message.readUInt16BE(offset + 2);
    attributes.set(type, message.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length + ((4 - (length % 4)) % 4);
  }
  const error = attributes.get(ATTRIBUTE.errorCode);
  return { ok: (message.readUInt16BE(0) & 0x0110) === SUCCESS, errorCode: error ? error[2]! * 100 + error[3]! : 0, attributes };
}

/** One TURN allocation over UDP, held open by a socket of its own, with long-term credentials (TURN REST API ones). */
export interface TurnAllocation {
  /** Refreshes the allocation; resolves with the answer's error code, 0 on success (437: the server forgot it). */
  refresh(): Promise<number>;
  close(): void;
}

/** Allocates a UDP relay on the TURN server at 127.0.0.1:`port`; rejects with the error code when refused. */
export async function allocate(port: number, username: string, password: string): Promise<TurnAllocation> {
  const socket: Socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const exchange = (message: Buffer) =>
    new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no TURN answer within 5 s")), 5_000);
      socket.once("message", (answer) => {
        clearTimeout(timer);
        resolve(parse(answer));
      });
      socket.send(message, port, "127.0.0.1");
    });
  const transport = attribute(ATTRIBUTE.requestedTransport, Buffer.from([17, 0, 0, 0]));
  const challenge = await exchange(request(ALLOCATE, [transport]));
  const realm = challenge.attributes.get(ATTRIBUTE.realm)!;
  let nonce = challenge.attributes.get(ATTRIBUTE.nonce)!;
  const key = createHash("md5").update(`${username}:${realm.toString()}:${password}`).digest();
  const signed = (method: number, attributes: Buffer[]) =>
    request(
      method,
      [...attributes, attribute(ATTRIBUTE.username, Buffer.from(username)), attribute(ATTRIBUTE.realm, realm), attribute(ATTRIBUTE.nonce, nonce)],
      key,
    );
  /** Sends a signed request, once more with the new nonce when the server says the old one went stale. */
  const send = async (method: number, attributes: Buffer[]) => {
    let answer = await exchange(signed(method, attributes));
    if (answer.errorCode === 438) {
      nonce = answer.attributes.get(ATTRIBUTE.nonce)!;
      answer = await exchange(signed(method, attributes));
    }
    return answer;
  };
  const allocated = await send(ALLOCATE, [transport]);
  if (!allocated.ok) {
    socket.close();
    throw new Error(`TURN Allocate refused with ${allocated.errorCode}`);
  }
  const lifetime = Buffer.alloc(4);
  lifetime.writeUInt32BE(600);
  return {
    refresh: async () => (await send(REFRESH, [attribute(ATTRIBUTE.lifetime, lifetime)])).errorCode,
    close: () => socket.close(),
  };
}
