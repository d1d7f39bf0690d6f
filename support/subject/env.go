package subject

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/travelbook/onecharge/support/payments"
	"github.com/travelbook/onecharge/support/retry"
)

// Environment variables that choose the subject.
const (
	EnvCmd     = "ONECHARGE_SUBJECT_CMD"     // an external command, run once per booking
	EnvURL     = "ONECHARGE_SUBJECT_URL"     // a running service's charge endpoint
	EnvName    = "ONECHARGE_SUBJECT"         // safe (default), naive or sdk: in-repo clients
	EnvTimeout = "ONECHARGE_SUBJECT_TIMEOUT" // per-booking bound for external subjects, e.g. 30s
)

// Options is what FromEnv needs to build any subject against a stack.
type Options struct {
	// Config reaches the stack; its BaseURL and APIKey are handed to
	// external commands too.
	Config payments.Config
	// Policy is the Safe client's retry policy.
	Policy retry.Policy
	// Seen counts what the stack saw for a booking; see Command.
	Seen func(booking string) int
	// Dir is where a command runs (relative commands resolve from it).
	Dir string
	// Stderr receives commands' stderr.
	Stderr io.Writer
	// Journal, when set, keeps the Safe client's keys and attempts
	// (support/keystore): the run's audit trail.
	Journal payments.Journal
	// Getenv reads the environment. Defaults to os.Getenv.
	Getenv func(string) string
}

// FromEnv picks the subject: ONECHARGE_SUBJECT_CMD, else
// ONECHARGE_SUBJECT_URL, else the in-repo client named by
// ONECHARGE_SUBJECT (safe by default; naive and sdk exist to show that the
// gate fails on code that double-charges).
func FromEnv(o Options) (payments.Client, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	timeout := DefaultTimeout
	if v := getenv(EnvTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q is not a duration: give one such as 30s or 2m", EnvTimeout, v)
		}
		timeout = d
	}
	if cmd := getenv(EnvCmd); cmd != "" {
		return &Command{Cmd: cmd, Dir: o.Dir, BaseURL: o.Config.BaseURL, APIKey: o.Config.APIKey,
			Timeout: timeout, Seen: o.Seen, Stderr: o.Stderr}, nil
	}
	if u := getenv(EnvURL); u != "" {
		return &HTTP{URL: u, Timeout: timeout, Seen: o.Seen}, nil
	}
	switch name := getenv(EnvName); name {
	case "", "safe":
		safe := payments.NewSafe(o.Config, o.Policy)
		safe.Journal = o.Journal
		return safe, nil
	case "naive":
		return payments.NewNaive(o.Config), nil
	case "sdk":
		return payments.NewSDK(o.Config, 2), nil
	default:
		return nil, fmt.Errorf("%s=%q is not a subject: use safe, naive or sdk, or set %s or %s", EnvName, name, EnvCmd, EnvURL)
	}
}
