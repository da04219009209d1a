// The demo's private TCP process: a line-echo service on $HOST:$PORT (the engine sets both).
import net from "node:net";

const port = Number(process.env.PORT ?? 6000);
const server = net.createServer((socket) => {
  socket.setEncoding("utf8");
  socket.on("data", (data) => socket.write(`echo ${data}`));
  socket.on("error", () => socket.destroy());
});
server.listen(port, process.env.HOST ?? "127.0.0.1", () => console.log(`api-tcp listening on ${port}`));

process.on("SIGTERM", () => {
  console.log("api-tcp got SIGTERM, closing");
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
