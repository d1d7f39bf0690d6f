package idempotency

import (
	"crypto/sha256"
	"net/url"
)

// paramsDigest identifies a request's parameters. Entries keep a digest
// rather than the parameters, so a stored key costs the same whatever the
// request sent.
type paramsDigest [sha256.Size]byte

// digestParams canonicalises a POST's parameters (query and form body) so
// that the order of fields does not matter, as at Stripe, while repeated
// values of one name keep their relative order (for arrays like
// expand[]=a&expand[]=b that order is part of the request). A body that is
// not valid form encoding is compared byte for byte.
func digestParams(rawQuery string, body []byte) paramsDigest {
	q, qerr := url.ParseQuery(rawQuery)
	f, ferr := url.ParseQuery(string(body))
	if qerr != nil || ferr != nil {
		h := sha256.New()
		h.Write([]byte("raw\x00"))
		h.Write([]byte(rawQuery))
		h.Write([]byte{0})
		h.Write(body)
		var d paramsDigest
		h.Sum(d[:0])
		return d
	}
	for k, vs := range q {
		f[k] = append(f[k], vs...)
	}
	// Encode sorts by name and keeps the order of each name's values.
	return sha256.Sum256([]byte("form\x00" + f.Encode()))
}
