// Runs the shop: VENDURE_DATA=<folder> VENDURE_PORT=<port> node server.js
const { bootstrap, JobQueueService } = require('@vendure/core');
const { vendureConfig } = require('./config');

async function main() {
  const config = vendureConfig();
  const app = await bootstrap(config);
  // Jobs run in the server's own process: the shop is small, and one process is simpler
  // to start and stop.
  await app.get(JobQueueService).start();
  console.log(`vendure ready on ${config.apiOptions.port}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
