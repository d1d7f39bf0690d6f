package keystore

import (
	"context"
	"fmt"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// StripeLookup finds a booking's PaymentIntent through the Stripe API: it
// lists PaymentIntents created since a time (GET /v1/payment_intents with
// created[gte]) and keeps those whose metadata names the booking. Listing
// rather than searching matters: Stripe's search index lags by up to a
// minute, the list endpoint does not.
// See https://docs.stripe.com/api/payment_intents/list.
type StripeLookup struct {
	// API is the client to list with, e.g. client.New(key, backends).
	API *client.API
	// MetadataKey is the metadata field that holds the booking reference.
	// Defaults to "booking_id".
	MetadataKey string
}

// FindPaymentIntent returns the booking's PaymentIntent. More than one is
// an error: the booking was already charged twice, and a person must
// refund before any key is minted.
func (l StripeLookup) FindPaymentIntent(ctx context.Context, booking string, since time.Time) (string, string, bool, error) {
	field := l.MetadataKey
	if field == "" {
		field = "booking_id"
	}
	params := &stripe.PaymentIntentListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	var found []*stripe.PaymentIntent
	it := l.API.PaymentIntents.List(params)
	for it.Next() {
		if pi := it.PaymentIntent(); pi.Metadata[field] == booking {
			found = append(found, pi)
		}
	}
	if err := it.Err(); err != nil {
		return "", "", false, fmt.Errorf("listing PaymentIntents created since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	switch len(found) {
	case 0:
		return "", "", false, nil
	case 1:
		return found[0].ID, string(found[0].Status), true, nil
	}
	ids := make([]string, len(found))
	for i, pi := range found {
		ids[i] = pi.ID
	}
	return "", "", false, fmt.Errorf("booking %s already has %d PaymentIntents (%s): it was charged more than once; refund the duplicates before reconciling", booking, len(found), strings.Join(ids, ", "))
}
