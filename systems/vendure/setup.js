// Creates the shop's database once: one zone and country, a tax rate (which makes the tax
// category), a shipping method and a payment method that settles at once.
//   VENDURE_DATA=<folder> node setup.js
const { bootstrap, LanguageCode } = require('@vendure/core');
const { populate } = require('@vendure/core/cli');
const { vendureConfig } = require('./config');

const initialData = {
  defaultLanguage: LanguageCode.en,
  defaultZone: 'Europe',
  countries: [{ name: 'Germany', code: 'DE', zone: 'Europe' }],
  taxRates: [{ name: 'Standard Tax', percentage: 19 }],
  shippingMethods: [{ name: 'Standard Shipping', price: 500 }],
  paymentMethods: [
    {
      name: 'Pay at once',
      handler: {
        code: 'dummy-payment-handler',
        arguments: [{ name: 'automaticSettle', value: 'true' }],
      },
    },
  ],
  collections: [],
};

async function main() {
  const config = vendureConfig();
  config.apiOptions.port = Number(process.env.VENDURE_SETUP_PORT || 0);
  const app = await populate(() => bootstrap(config), initialData);
  await app.close();
  console.log('vendure set up');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
