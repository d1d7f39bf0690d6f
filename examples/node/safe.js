// A correct subject: stripe-node's own retries (timeouts, connection
// errors, 409, 5xx) under one explicit idempotency key per booking, so
// every retry of a booking is the same request to Stripe.
'use strict';

const { booking, client, params, mayHaveExecuted, report } = require('./subject');

async function main() {
  const b = booking();
  const stripe = client({ maxNetworkRetries: 3, timeout: 1000 });
  try {
    const pi = await stripe.paymentIntents.create(params(b), {
      idempotencyKey: `tb:v1:${b.agency}:${b.id}:create_payment`,
    });
    report('succeeded', pi.id);
  } catch (err) {
    report(mayHaveExecuted(err) ? 'indeterminate' : 'failed', '', `${err.type}: ${err.message}`);
  }
}

main();
