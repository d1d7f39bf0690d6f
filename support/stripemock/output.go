package stripemock

import (
	"bytes"
	"strings"
	"sync"
)

// listeningPrefix is what stripe-mock prints once its HTTP listener is bound.
const listeningPrefix = "Listening for HTTP at address: "

// tailLines is how many lines of output the watcher keeps for error messages.
const tailLines = 20

// watcher is the stdout and stderr of stripe-mock. It reports the address
// stripe-mock listens on and keeps the last lines of output for error
// messages; everything else (stripe-mock logs a line per request) is
// discarded so a long run does not grow memory.
type watcher struct {
	mu        sync.Mutex
	partial   []byte
	tail      []string
	addr      string
	listening chan struct{} // closed once addr is known
}

func newWatcher() *watcher { return &watcher{listening: make(chan struct{})} }

// Write implements io.Writer; exec calls it from one goroutine at a time
// because stdout and stderr are the same writer.
func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	// A line without a newline that keeps growing is not useful output.
	if len(w.partial) > 64<<10 {
		w.partial = w.partial[:0]
	}
	return len(p), nil
}

func (w *watcher) line(l string) {
	l = strings.TrimRight(l, "\r")
	if strings.TrimSpace(l) == "" {
		return
	}
	if w.addr == "" {
		if a, ok := strings.CutPrefix(l, listeningPrefix); ok {
			w.addr = strings.TrimSpace(a)
			close(w.listening)
		}
	}
	w.tail = append(w.tail, l)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
}

// Addr returns the address stripe-mock printed, or "".
func (w *watcher) Addr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addr
}

// Output returns the kept lines plus any unterminated last line: stripe-mock
// writes its fatal errors without a trailing newline.
func (w *watcher) Output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(w.tail, "\n")
	if p := strings.TrimSpace(string(w.partial)); p != "" {
		s += "\n" + p
	}
	return s
}
