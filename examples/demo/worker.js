// The demo's background worker: not reachable from the network, it just works.
let jobs = 0;
const timer = setInterval(() => {
  jobs += 1;
  console.log(`worker finished job ${jobs}`);
}, 1000);

process.on("SIGTERM", () => {
  console.log("worker got SIGTERM, stopping");
  clearInterval(timer);
  process.exit(0);
});
