package keystore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/travelbook/onecharge/support/keystore"
)

// benchReserve measures reservations of new operations (each an INSERT
// plus its read-back in one transaction) from GOMAXPROCS×4 goroutines, and
// reports reservations/s. "found" variants re-reserve existing operations,
// the cost of every retry.
func benchReserve(b *testing.B, s keystore.Store) {
	ctx := context.Background()
	mint := func() (string, error) { return uuid.NewString(), nil }
	for _, mode := range []string{"new", "found"} {
		b.Run(mode, func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if mode == "found" {
						i = i % 100
					}
					if _, _, err := s.Reserve(ctx, fmt.Sprintf("bench-%d", i), "charge", mint, time.Now()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
		})
	}
}

func BenchmarkReserveSQLite(b *testing.B) {
	s, err := keystore.OpenSQLite(b.TempDir() + "/keys.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchReserve(b, s)
}

func BenchmarkReservePostgres(b *testing.B) {
	s, err := keystore.OpenPostgres(context.Background(), pg.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchReserve(b, s)
}
