package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartServesAndStopRemoves(t *testing.T) {
	c, err := StartCluster("")
	if err != nil {
		skipOrFail(t, err)
	}
	dsn, err := c.CreateDatabase(context.Background(), "Some-Test/Name")
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	var one int
	err = conn.QueryRow(context.Background(), "SELECT 1").Scan(&one)
	conn.Close(context.Background())
	if err != nil || one != 1 {
		c.Stop()
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	dir := c.Dir
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(context.Background(), dsn); err == nil {
		t.Fatal("server still accepts connections after Stop")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Stop left %s behind (%v)", dir, err)
	}
}

func TestBinDirHonoursPGBin(t *testing.T) {
	t.Setenv("PG_BIN", t.TempDir())
	if _, err := BinDir(); err == nil {
		t.Fatal("BinDir accepted a PG_BIN without binaries")
	}
}
