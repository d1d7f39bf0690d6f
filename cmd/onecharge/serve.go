package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/travelbook/onecharge/support/stack"
	"github.com/travelbook/onecharge/support/stripeapi"
	"github.com/travelbook/onecharge/support/stripemock"
)

// serve runs the stack until SIGINT or SIGTERM, then stops the listener and
// the stripe-mock it started.
func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:12111", "address to listen on (port 0 picks a free port)")
	reference := fs.String("reference", stripeapi.DefaultReference, "request parameter that names the business reference")
	upstream := fs.String("upstream", "", "stripe-mock URL to front (default: $STRIPE_MOCK_URL, else start stripe-mock)")
	verbose := fs.Bool("v", false, "log every injected fault to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	up := *upstream
	var mock *stripemock.Server
	if up == "" {
		var err error
		mock, err = stripemock.FromEnv(ctx, stripemock.Options{Log: stderr})
		if err != nil {
			fmt.Fprintf(stderr, "onecharge: %v\n", err)
			return 1
		}
		defer mock.Stop()
		up = mock.URL
		if !mock.External() {
			fmt.Fprintf(stderr, "onecharge: started stripe-mock (pid %d) at %s\n", mock.PID(), up)
		}
	}

	logw := io.Discard
	if *verbose {
		logw = stderr
	}
	st, err := stack.Start(stack.Config{Addr: *addr, Upstream: up, Reference: *reference, Log: logw})
	if err != nil {
		fmt.Fprintf(stderr, "onecharge: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "onecharge: serving Stripe API at %s (upstream %s, idempotency layer emulated, reference %s)\n", st.URL, up, *reference)
	fmt.Fprintf(stdout, "onecharge: control API at %s/_onecharge/ (health, ledger, faults, clock, reset); Ctrl-C stops\n", st.URL)

	<-ctx.Done()
	fmt.Fprintln(stderr, "onecharge: stopping")
	_ = st.Close()
	return 0
}
