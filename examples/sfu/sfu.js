// A stand-in SFU: it answers every request with the TURN and BERTH_RTC_* variables it was given,
// so a test can see what one replica received (a real SFU would mint ICE credentials with them).
const http = require("node:http");

const names = ["TURN_SHARED_SECRET", "TURN_HOSTNAME", "TURN_PORT", "TURN_REALM", "BERTH_RTC_PROCESS", "BERTH_RTC_REPLICA", "BERTH_RTC_HOSTNAME"];
http
  .createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(Object.fromEntries(names.map((name) => [name, process.env[name]]))));
  })
  .listen(Number(process.env.PORT), "127.0.0.1");
