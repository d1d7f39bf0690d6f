// TravelBook's bug in Node: an application-level retry after a timeout
// calls paymentIntents.create again without an idempotency key. stripe-node
// gives every call a new generated key, so Stripe sees a new request and,
// when the first one had executed, charges the booking twice. onecharge
// must catch it.
'use strict';

const { booking, client, params, report } = require('./subject');

async function main() {
  const b = booking();
  const stripe = client({ maxNetworkRetries: 0, timeout: 1000 });
  let last;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const pi = await stripe.paymentIntents.create(params(b)); // no idempotencyKey: the bug
      report('succeeded', pi.id);
      return;
    } catch (err) {
      last = err;
      if (err.type !== 'StripeConnectionError') break; // retry timeouts and connection errors only
    }
  }
  // Like TravelBook's code: whatever Stripe did, the payment "failed".
  report('failed', '', `${last.type}: ${last.message}`);
}

main();
