// Package faults is onecharge's seeded, per-request fault schedule. It
// plays the unreliable network between a payment client and Stripe, and the
// failures Stripe itself answers with, so that specs can check that every
// booking is still charged exactly once.
//
// An Injector offers two fault points, both plain http.Handler middleware:
//
//   - Network wraps the whole stack. It plays the network (drop_response,
//     reset_before, reset_after, delay) and what Stripe runs before its
//     idempotency layer (rate_limit, lock_timeout, unavailable), so none of
//     these answers is saved under an idempotency key.
//   - Inside sits after the idempotency layer and plays failures while Stripe
//     executes (server_error, slow), which the idempotency layer then saves
//     and replays, as Stripe does.
//
// Network decides for each request which rules apply; a decision for an
// inside kind travels to Inside in the request context. Rules match on
// method, path, the n-th request matching the rule, the attempt number per
// idempotency key and a probability drawn from a source seeded by the
// schedule, so a sequential run with the same seed injects the same faults.
// Every injected fault is recorded and logged with that seed.
//
// We wrote this package rather than use a library because fault-injection
// proxies (toxiproxy and the like) work on connections or on fixed
// percentages; none schedules faults per request and per idempotency-key
// attempt at the HTTP layer, which is what a single-charge proof needs
// ("drop the response of the first attempt of every key").
//
// The schedule's JSON form is the body of `POST /_onecharge/faults`
// (see DESIGN.md):
//
//	{"seed":7,"rules":[
//	  {"fault":"drop_response","method":"POST","path":"/v1/payment_intents","nth":[1],"count":1},
//	  {"fault":"delay","delay":"300ms","probability":0.2},
//	  {"fault":"rate_limit","key_attempts":[1,2]}]}
package faults
