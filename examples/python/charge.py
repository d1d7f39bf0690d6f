#!/usr/bin/env python3
"""A onecharge subject in Python, TravelBook's stack: the fix in a few lines.

One PaymentIntent per booking under one explicit idempotency key, reused on
every retry that the stripe library makes by itself (max_network_retries),
and a lost answer or a saved 500 reported as "indeterminate" (reconcile, do
not charge again), never retried under a new key.

    pip install stripe
    ONECHARGE_SUBJECT_CMD='python3 examples/python/charge.py' make verify

onecharge runs it once per booking with ONECHARGE_BOOKING_ID,
ONECHARGE_AGENCY_ID, ONECHARGE_AMOUNT (minor units), ONECHARGE_CURRENCY,
STRIPE_API_BASE and STRIPE_API_KEY set; it prints one JSON line and exits 0
on success.
"""
import json
import os
import sys

import stripe


def report(result, payment_intent="", error=""):
    print(json.dumps({"result": result, "payment_intent": payment_intent, "error": error}), flush=True)
    sys.exit({"succeeded": 0, "failed": 1}.get(result, 2))


def error_class(name):
    # stripe >= 2 exports the errors at the top level; older ones under stripe.error.
    return getattr(stripe, name, None) or getattr(stripe.error, name)


def main():
    env = os.environ
    booking, agency = env["ONECHARGE_BOOKING_ID"], env["ONECHARGE_AGENCY_ID"]
    stripe.api_key = env["STRIPE_API_KEY"]
    stripe.api_base = env.get("STRIPE_API_BASE", "https://api.stripe.com")
    stripe.max_network_retries = 3
    # A short timeout, so that a lost answer is retried (with the same key) soon.
    new_client = getattr(stripe, "new_default_http_client", None) or stripe.http_client.new_default_http_client
    stripe.default_http_client = new_client(timeout=1)
    try:
        pi = stripe.PaymentIntent.create(
            amount=int(env["ONECHARGE_AMOUNT"]),
            currency=env["ONECHARGE_CURRENCY"],
            payment_method_types=["card"],
            metadata={"booking_id": booking, "agency_id": agency},
            idempotency_key="tb:v1:%s:%s:create_payment" % (agency, booking),
        )
    except error_class("APIConnectionError") as e:
        report("indeterminate", error="the answer was lost (%s): reconcile, do not charge again" % e)
    except error_class("StripeError") as e:
        status = getattr(e, "http_status", None)
        if status is None or status >= 500:
            report("indeterminate", error="HTTP %s: %s" % (status, e))
        report("failed", error="HTTP %s: %s" % (status, e))
    report("succeeded", pi["id"])


if __name__ == "__main__":
    main()
