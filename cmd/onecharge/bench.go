package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"

	"github.com/travelbook/onecharge/support/bench"
)

func init() { extraCommands["bench"] = benchCmd }

// defaultBenchSeed is the Makefile's SEED, used when ONECHARGE_SEED is unset.
const defaultBenchSeed = 20261204

// benchCmd measures the harness (see support/bench) and writes
// <out>/bench.json and a table. It exits 1 when a correctness check
// fails (a duplicate charge by the Safe client, say), or with --strict
// when a performance target was missed too; 2 when it could not measure.
func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "reports", "directory to write bench.json to")
	quick := fs.Bool("quick", false, "a smoke run of a few seconds with small counts")
	strict := fs.Bool("strict", false, "also exit 1 when a performance target is missed")
	seed := fs.Int64("seed", envSeed(), "seed of the fault schedule, amounts and jitter (default $ONECHARGE_SEED)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of one extra stack phase to this file")
	skipGoBench := fs.Bool("skip-go-bench", false, "do not run the idempotency layer's Go benchmarks")
	mockURL := fs.String("stripe-mock-url", "", "use this running stripe-mock instead of starting one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := bench.Config{Seed: *seed, Quick: *quick, SkipGoBench: *skipGoBench, StripeMockURL: *mockURL, Log: stderr}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "onecharge bench: cannot create the CPU profile: %v.\n", err)
			return 2
		}
		defer f.Close()
		cfg.CPUProfile = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(stderr, "onecharge bench: seed %d\n", *seed)
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "onecharge bench: %v\n", err)
		return 2
	}
	path, err := bench.WriteJSON(*out, res)
	if err != nil {
		fmt.Fprintf(stderr, "onecharge bench: %v.\n", err)
		return 2
	}
	if err := bench.WriteTable(stdout, res); err != nil {
		return 2
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", path)
	if *cpuprofile != "" {
		fmt.Fprintf(stdout, "CPU profile of the stack under load: go tool pprof -top %s\n", *cpuprofile)
	}
	switch {
	case !res.Pass:
		fmt.Fprintln(stderr, "onecharge bench: a correctness check failed (see FAIL above); the seed above reproduces the run.")
		return 1
	case *strict && !res.MeetsTargets:
		fmt.Fprintln(stderr, "onecharge bench: a performance target was missed (see MISS above); check the load average and run again on a quiet machine.")
		return 1
	}
	return 0
}

func envSeed() int64 {
	if s, err := strconv.ParseInt(os.Getenv("ONECHARGE_SEED"), 10, 64); err == nil {
		return s
	}
	return defaultBenchSeed
}
