// A stand-in SFU: it answers every request with the TURN and BERTH_RTC_* variables it was given,
// so a test can see what one replica received (a real SFU would mint ICE credentials with them).
// Its signaling WebSocket is an echo that names the replica in the handshake.
const http = require("node:http");

const names = ["TURN_SHARED_SECRET", "TURN_HOSTNAME", "TURN_PORT", "TURN_REALM", "BERTH_RTC_PROCESS", "BERTH_RTC_REPLICA", "BERTH_RTC_HOSTNAME"];
const server = http.createServer((_request, response) => {
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify(Object.fromEntries(names.map((name) => [name, process.env[name]]))));
});
server.on("upgrade", (request, socket, head) => {
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${request.headers.upgrade}\r\nConnection: Upgrade\r\nx-berth-rtc-replica: ${process.env.BERTH_RTC_REPLICA}\r\n\r\n`,
  );
  if (head.length > 0) socket.write(head);
  socket.on("data", (chunk) => socket.write(chunk));
  socket.on("error", () => {});
});
server.listen(Number(process.env.PORT), "127.0.0.1");
