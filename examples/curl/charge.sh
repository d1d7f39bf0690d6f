#!/bin/sh
# The smallest correct client: one PaymentIntent per booking, one
# idempotency key per booking reused on every retry, and a 500 treated as
# "may have happened" (Stripe saved it) rather than retried under a new key.
#
# A onecharge subject: run once per booking with ONECHARGE_BOOKING_ID,
# ONECHARGE_AGENCY_ID, ONECHARGE_AMOUNT (minor units), ONECHARGE_CURRENCY,
# STRIPE_API_BASE and STRIPE_API_KEY in its environment; prints one JSON
# line, exits 0 on success.
#
#   ONECHARGE_SUBJECT_CMD=examples/curl/charge.sh make verify
set -u

: "${STRIPE_API_BASE:=https://api.stripe.com}"
key="tb:v1:${ONECHARGE_AGENCY_ID}:${ONECHARGE_BOOKING_ID}:create_payment"
max_attempts=${CHARGE_MAX_ATTEMPTS:-6}
body=$(mktemp)
errs=$(mktemp)
trap 'rm -f "$body" "$errs"' EXIT

result() { # result STATUS PAYMENT_INTENT ERROR
	printf '{"result":"%s","payment_intent":"%s","error":"%s"}\n' "$1" "$2" "$(printf '%s' "$3" | tr -d '\r\n\t' | cut -c1-300 | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

attempt=1
last=""
maybe=0 # set once an attempt may have reached Stripe without an answer
while [ "$attempt" -le "$max_attempts" ]; do
	status=$(curl -sS --max-time 1 -o "$body" -w '%{http_code}' \
		-u "$STRIPE_API_KEY:" \
		-H "Idempotency-Key: $key" \
		-d amount="$ONECHARGE_AMOUNT" \
		-d currency="$ONECHARGE_CURRENCY" \
		-d "payment_method_types[]=card" \
		-d "metadata[booking_id]=$ONECHARGE_BOOKING_ID" \
		-d "metadata[agency_id]=$ONECHARGE_AGENCY_ID" \
		"$STRIPE_API_BASE/v1/payment_intents" 2>"$errs")
	code=$?
	case "$code:$status" in
	0:200)
		pi=$(grep -o '"id": *"pi_[A-Za-z0-9_]*"' "$body" | head -n1 | sed 's/.*"\(pi_[^"]*\)"/\1/')
		if [ -n "$pi" ]; then
			result succeeded "$pi" ""
			exit 0
		fi
		last="HTTP 200 without a PaymentIntent id"
		maybe=1
		;;
	0:500)
		# Saved by Stripe's idempotency layer: the same key replays it.
		result indeterminate "" "HTTP 500 (saved by Stripe; reconcile, do not charge again): $(cat "$body")"
		exit 2
		;;
	0:409 | 0:429 | 0:5??)
		last="HTTP $status: $(cat "$body")"
		;;
	0:*)
		# 400, 401, 402...: Stripe said no; retrying cannot help.
		result failed "" "HTTP $status: $(cat "$body")"
		exit 1
		;;
	*)
		# Timeout, reset, refused: the request may have executed.
		last="curl exit $code: $(cat "$errs")"
		maybe=1
		;;
	esac
	sleep "0.0$attempt" # a small backoff: 10 ms, 20 ms, ...
	attempt=$((attempt + 1))
done
if [ "$maybe" = 1 ]; then
	result indeterminate "" "gave up after $max_attempts attempts with the same key: $last"
else
	result failed "" "gave up after $max_attempts attempts with the same key: $last"
fi
exit 2
