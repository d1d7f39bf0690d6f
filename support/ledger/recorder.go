package ledger

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/travelbook/onecharge/support/stripeapi"
)

// maxCaptured bounds how much of a response Recorder keeps to find the id;
// a created Stripe object is a few kilobytes.
const maxCaptured = 4 << 20

// Recorder records in l every object that next creates. It is the
// innermost layer of the stack, just before stripe-mock, so it sees only
// requests that really executed (not replays, not injected faults).
//
// A POST is a create when next answers 2xx with a JSON object whose string
// "id" and "object" are set and whose id is not in the request path
// (POST /v1/payment_intents creates; POST /v1/payment_intents/pi_x/confirm
// acts on an existing object). The reference is the form parameter
// referenceParam (stripeapi.DefaultReference when empty).
func Recorder(l *Ledger, referenceParam string, next http.Handler) http.Handler {
	if referenceParam == "" {
		referenceParam = stripeapi.DefaultReference
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := stripeapi.ReadBody(r)
		if err != nil {
			stripeapi.WriteError(w, http.StatusBadRequest, stripeapi.Error{
				Type:    stripeapi.TypeInvalidRequest,
				Message: "The request body could not be read: " + err.Error(),
			})
			return
		}
		cw := &capture{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		id, object, ok := created(cw, r.URL.Path)
		if !ok || cw.Header().Get(stripeapi.HeaderIdempotentReplayed) == "true" {
			// A replay created nothing: in test mode Stripe's own
			// idempotency layer answers it below this recorder.
			return
		}
		form := stripeapi.Form(body)
		amount, _ := strconv.ParseInt(form.Get("amount"), 10, 64)
		l.Record(Object{
			ID:             id,
			Object:         object,
			Path:           r.URL.Path,
			Reference:      form.Get(referenceParam),
			Amount:         amount,
			Currency:       strings.ToLower(form.Get("currency")),
			IdempotencyKey: r.Header.Get(stripeapi.HeaderIdempotencyKey),
			RequestID:      r.Header.Get(stripeapi.HeaderInternalRequestID),
		})
	})
}

// created returns the id and type of the object a response created.
func created(cw *capture, path string) (id, object string, ok bool) {
	status := cw.status
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	if status < 200 || status > 299 || cw.overflow {
		return "", "", false
	}
	id, object, ok = topLevelIDObject(cw.body.Bytes())
	if !ok || strings.Contains(path, id) {
		return "", "", false
	}
	return id, object, true
}

// topLevelIDObject returns the string values of the top-level "id" and
// "object" members of a JSON object in one pass, without decoding the
// rest. Decoding a whole 1.5 KB PaymentIntent with encoding/json cost
// ~25 µs per create, the largest cost of the stack's own code under load
// (pprof, make bench); this scan costs ~2.5 µs. Values with escapes, which
// Stripe ids never have, fall back to encoding/json.
func topLevelIDObject(b []byte) (id, object string, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", "", false
	}
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case '"':
			key, end, escaped := scanString(b, i)
			if end < 0 {
				return "", "", false
			}
			i = end
			if depth != 1 || escaped || (key != "id" && key != "object") {
				continue
			}
			j := skipSpace(b, i)
			if j >= len(b) || b[j] != ':' {
				continue // a value, not a key
			}
			k := skipSpace(b, j+1)
			if k >= len(b) || b[k] != '"' {
				continue // not a string: not an id
			}
			val, vend, vesc := scanString(b, k)
			if vend < 0 {
				return "", "", false
			}
			if vesc {
				return slowIDObject(b)
			}
			if key == "id" {
				id = val
			} else {
				object = val
			}
			i = vend
		default:
			i++
		}
	}
	return id, object, id != "" && object != ""
}

// scanString reads the JSON string starting at b[i] == '"' and returns its
// raw contents, the index just past its closing quote (-1 if unterminated)
// and whether it held escapes.
func scanString(b []byte, i int) (s string, end int, escaped bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return string(b[i+1 : j]), j + 1, escaped
		}
	}
	return "", -1, escaped
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

func slowIDObject(b []byte) (id, object string, ok bool) {
	var v struct {
		ID     any `json:"id"`
		Object any `json:"object"`
	}
	if json.Unmarshal(b, &v) != nil {
		return "", "", false
	}
	id, idOK := v.ID.(string)
	object, objOK := v.Object.(string)
	return id, object, idOK && objOK && id != "" && object != ""
}

// capture passes a response through to the client while keeping its
// status and body.
type capture struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	overflow bool
}

func (c *capture) WriteHeader(status int) {
	if c.status == 0 && status >= 200 { // 1xx are interim; the final status follows
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if !c.overflow {
		if c.body.Len()+len(p) > maxCaptured {
			c.overflow = true
			c.body.Reset()
		} else {
			c.body.Write(p)
		}
	}
	return c.ResponseWriter.Write(p)
}

// Flush lets streaming and fault layers above flush through the recorder.
func (c *capture) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *capture) Unwrap() http.ResponseWriter { return c.ResponseWriter }
