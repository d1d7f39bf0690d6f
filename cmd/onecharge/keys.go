package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/travelbook/onecharge/support/apikey"
)

func init() {
	extraCommands["check-key"] = checkKey
	extraCommands["scan"] = scan
}

// checkKey refuses, before anything is sent, any STRIPE_API_KEY that is not
// a test-mode secret or restricted key. No key is fine: the run targets the
// local stripe-mock.
func checkKey(args []string, stdout, stderr io.Writer) int {
	key := os.Getenv(apikey.EnvVar)
	if key == "" {
		fmt.Fprintln(stdout, "onecharge: no STRIPE_API_KEY: the run targets the local stripe-mock")
		return 0
	}
	if err := apikey.Check(key); err != nil {
		fmt.Fprintf(stderr, "onecharge: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "onecharge: STRIPE_API_KEY %s is a test-mode key: the run targets Stripe test mode\n", apikey.Redact(key))
	return 0
}

// scan fails if any file under --dir holds the API key in the environment,
// any other whole secret key, or a client_secret: reports get emailed.
func scan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "reports", "directory to scan")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var secrets []string
	if k := os.Getenv(apikey.EnvVar); k != "" {
		secrets = append(secrets, k)
	}
	findings, err := apikey.ScanDir(*dir, secrets...)
	if err != nil {
		fmt.Fprintf(stderr, "onecharge scan: %v\n", err)
		return 2
	}
	for _, f := range findings {
		fmt.Fprintf(stderr, "onecharge scan: secret in %s\n", f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(stderr, "onecharge scan: %d secrets found under %s: do not share these files; report it as a bug.\n", len(findings), *dir)
		return 1
	}
	fmt.Fprintf(stdout, "onecharge: no secret found under %s\n", *dir)
	return 0
}
