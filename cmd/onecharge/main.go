// Command onecharge serves the Stripe-faithful local stack and renders the
// evidence of a verification run.
//
//	onecharge serve  [--addr 127.0.0.1:12111] [--reference 'metadata[booking_id]']
//	onecharge report [--in reports/report.json] [--out reports]
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		if cmd, ok := extraCommands[args[0]]; ok {
			return cmd(args[1:], stdout, stderr)
		}
		fmt.Fprintf(stderr, "onecharge: unknown command %q: run `onecharge help` for the list.\n", args[0])
		return 2
	}
}

// extraCommands lets other files register subcommands (report, ...).
var extraCommands = map[string]func(args []string, stdout, stderr io.Writer) int{}

func usage(w io.Writer) {
	fmt.Fprint(w, `onecharge proves that a Stripe integration charges every booking exactly once.

Commands:
  serve    serve the Stripe API (stripe-mock behind Stripe's idempotency layer,
           emulated) with fault injection and a ledger; see README.
  report   render reports/audit.html and reports/summary.json from a run.
  help     this text.
`)
}
