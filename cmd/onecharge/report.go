package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/travelbook/onecharge/support/evidence"
)

func init() { extraCommands["report"] = report }

// report renders audit.html and summary.json from Ginkgo's report.json and
// prints the terminal table. It exits 1 when the verdict is fail, so that
// `make verify` can gate on it, and 2 when its input is unusable.
func report(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", filepath.Join("reports", "report.json"), "Ginkgo JSON report to read")
	out := fs.String("out", "reports", "directory to write audit.html and summary.json to")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	reports, err := evidence.Load(*in)
	if errors.Is(err, evidence.ErrNoReport) {
		fmt.Fprintf(stderr, "onecharge report: %s does not exist: run `make verify` first.\n", *in)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "onecharge report: %v: run `make verify` again to rewrite it.\n", err)
		return 2
	}
	a, err := evidence.Build(reports)
	if err != nil {
		fmt.Fprintf(stderr, "onecharge report: %v: run `make verify` again to rewrite it.\n", err)
		return 2
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "onecharge report: cannot create %s: %v.\n", *out, err)
		return 2
	}
	for name, write := range map[string]func(io.Writer, *evidence.Audit) error{
		"audit.html": evidence.WriteHTML, "summary.json": evidence.WriteSummary,
	} {
		if err := writeFile(filepath.Join(*out, name), a, write); err != nil {
			fmt.Fprintf(stderr, "onecharge report: %v.\n", err)
			return 2
		}
	}
	if err := evidence.WriteTable(stdout, a); err != nil {
		fmt.Fprintf(stderr, "onecharge report: %v.\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(*out, "audit.html"), filepath.Join(*out, "summary.json"))
	if !a.Pass() {
		return 1
	}
	return 0
}

func writeFile(path string, a *evidence.Audit, write func(io.Writer, *evidence.Audit) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	if err := write(f, a); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
