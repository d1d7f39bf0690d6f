package main

import (
	"context"
	"strings"
	"time"

	"errors"
	"flag"
	"fmt"
	"github.com/travelbook/onecharge/support/keystore"
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
	keysDB := fs.String("keystore", "", "key store (SQLite) whose audit trail to include and export as keys.csv (default <out>/keys.db, if present)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *keysDB == "" {
		*keysDB = filepath.Join(*out, "keys.db")
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
	if a.Target == "testmode" {
		a.TargetNote = "Stripe test mode: the suite runs in a bounded number of processes (PROCS, default 2) and the Safe client backs off on 429."
		if b, err := os.ReadFile(filepath.Join(*out, "testmode-cleanup.txt")); err == nil {
			a.TargetNote += " " + strings.TrimSpace(strings.TrimPrefix(string(b), "onecharge: ")) + "."
		}
	}
	if _, err := os.Stat(*keysDB); err == nil {
		trail, err := auditTrail(*keysDB, filepath.Join(*out, "keys.csv"))
		if err != nil {
			fmt.Fprintf(stderr, "onecharge report: %v.\n", err)
			return 2
		}
		a.Trail = trail
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

// auditTrail reads every key of the run's key store, writes the auditor's
// CSV export beside it, and returns the rows for the report.
func auditTrail(db, csvPath string) (*evidence.AuditTrail, error) {
	ctx := context.Background()
	st, err := keystore.OpenSQLite(db)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ks, attempts, err := keystore.Collect(ctx, st, keystore.Filter{})
	if err != nil {
		return nil, fmt.Errorf("reading the audit trail in %s: %w", db, err)
	}
	f, err := os.Create(csvPath)
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", csvPath, err)
	}
	if err := keystore.ExportCSV(f, ks, attempts); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing %s: %w", csvPath, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	t := &evidence.AuditTrail{Store: "sqlite", Path: db, CSV: csvPath}
	for _, k := range ks {
		t.Rows = append(t.Rows, evidence.AuditRow{
			Key: k.Key, Booking: k.Booking, State: string(k.State), Attempts: k.Attempts, PaymentIntent: k.PaymentIntent,
			CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339), UpdatedAt: k.UpdatedAt.UTC().Format(time.RFC3339),
		})
	}
	return t, nil
}
