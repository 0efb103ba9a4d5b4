// One Vendure for Stockyard's demo and tests: an embedded sql.js database file, images on
// local disk, and only the plugins a shop needs to take products and orders.
// A shop on 127.0.0.1 for tests and a demo: it reports nothing to Vendure's telemetry.
process.env.VENDURE_DISABLE_TELEMETRY = process.env.VENDURE_DISABLE_TELEMETRY || 'true';

const fs = require('fs');
const path = require('path');
const { dummyPaymentHandler, DefaultJobQueuePlugin } = require('@vendure/core');
const { AssetServerPlugin } = require('@vendure/asset-server-plugin');

// Synchronous on purpose: two saves never interleave, and a kill leaves at most a stray
// .partial file beside an intact database.
function saveWhole(file, bytes) {
  const partial = `${file}.partial`;
  fs.writeFileSync(partial, bytes);
  fs.renameSync(partial, file);
}

function vendureConfig() {
  const data = process.env.VENDURE_DATA;
  if (!data) throw new Error('set VENDURE_DATA to the folder that holds the shop');
  const port = Number(process.env.VENDURE_PORT || 3000);
  const database = path.join(data, 'vendure.sqlite');
  return {
    apiOptions: {
      port,
      hostname: '127.0.0.1',
      adminApiPath: 'admin-api',
      shopApiPath: 'shop-api',
    },
    authOptions: {
      tokenMethod: ['bearer'],
      requireVerification: false,
      superadminCredentials: {
        identifier: process.env.VENDURE_ADMIN || 'superadmin',
        password: process.env.VENDURE_PASSWORD || 'superadmin',
      },
    },
    dbConnectionOptions: {
      type: 'sqljs',
      location: database,
      autoSave: true,
      // TypeORM's own save truncates the file and writes it asynchronously: a shop killed
      // in between (the tests kill it, as a crash would) came back with an empty database.
      // A whole new file renamed over the old one is either the old or the new database.
      autoSaveCallback: (bytes) => saveWhole(database, bytes),
      synchronize: true,
      logging: false,
    },
    paymentOptions: { paymentMethodHandlers: [dummyPaymentHandler] },
    plugins: [
      AssetServerPlugin.init({ route: 'assets', assetUploadDir: path.join(data, 'assets') }),
      DefaultJobQueuePlugin.init({ pollInterval: 1000 }),
    ],
  };
}

module.exports = { vendureConfig };
