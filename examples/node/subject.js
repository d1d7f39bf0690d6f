// What both examples share: the booking and the stack from the
// environment onecharge sets, a stripe-node client pointed at the stack,
// and the one JSON line (plus exit status) onecharge reads.
'use strict';

const Stripe = require('stripe');

function booking() {
  const env = process.env;
  return {
    id: env.ONECHARGE_BOOKING_ID,
    agency: env.ONECHARGE_AGENCY_ID,
    amount: Number(env.ONECHARGE_AMOUNT),
    currency: env.ONECHARGE_CURRENCY,
  };
}

// client points stripe-node at STRIPE_API_BASE (the onecharge stack, or
// Stripe itself when unset).
function client(options) {
  const base = new URL(process.env.STRIPE_API_BASE || 'https://api.stripe.com');
  const protocol = base.protocol.replace(':', '');
  return new Stripe(process.env.STRIPE_API_KEY, {
    host: base.hostname,
    port: Number(base.port || (protocol === 'https' ? 443 : 80)),
    protocol,
    telemetry: false,
    ...options,
  });
}

function params(b) {
  return {
    amount: b.amount,
    currency: b.currency,
    payment_method_types: ['card'],
    metadata: { booking_id: b.id, agency_id: b.agency },
  };
}

// mayHaveExecuted says whether Stripe may have created the PaymentIntent
// although the call failed: the answer was lost, or Stripe saved a 500.
function mayHaveExecuted(err) {
  return err.type === 'StripeConnectionError' || err.statusCode === 500 || err.statusCode === undefined;
}

function report(result, paymentIntent, error) {
  process.stdout.write(JSON.stringify({ result, payment_intent: paymentIntent || '', error: error || '' }) + '\n');
  process.exitCode = result === 'succeeded' ? 0 : result === 'failed' ? 1 : 2;
}

module.exports = { booking, client, params, mayHaveExecuted, report };
