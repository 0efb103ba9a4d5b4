// One Vendure for Stockyard's demo and tests: an embedded sql.js database file, images on
// local disk, and only the plugins a shop needs to take products and orders.
// A shop on 127.0.0.1 for tests and a demo: it reports nothing to Vendure's telemetry.
process.env.VENDURE_DISABLE_TELEMETRY = process.env.VENDURE_DISABLE_TELEMETRY || 'true';

const path = require('path');
const { dummyPaymentHandler, DefaultJobQueuePlugin } = require('@vendure/core');
const { AssetServerPlugin } = require('@vendure/asset-server-plugin');

function vendureConfig() {
  const data = process.env.VENDURE_DATA;
  if (!data) throw new Error('set VENDURE_DATA to the folder that holds the shop');
  const port = Number(process.env.VENDURE_PORT || 3000);
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
      location: path.join(data, 'vendure.sqlite'),
      autoSave: true,
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
