package idempotency

import (
	"bytes"
	"net/http"
)

// capture is the ResponseWriter next writes to on a first request. It
// holds the status and body back so the layer can save the response before
// the client sees it.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }

// WriteHeader records the first status, as net/http does.
func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(p)
}

// statusCode is the status next wrote, or 200 if it wrote nothing.
func (c *capture) statusCode() int {
	if c.status == 0 {
		return http.StatusOK
	}
	return c.status
}
