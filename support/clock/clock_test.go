package clock

import (
	"context"
	"testing"
	"time"
)

func TestVirtualSleepAdvancesWithoutWaiting(t *testing.T) {
	start := time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC)
	v := NewVirtual(start)
	if err := v.Sleep(context.Background(), 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := v.Now(); !got.Equal(start.Add(3 * time.Hour)) {
		t.Fatalf("Now() = %v, want %v", got, start.Add(3*time.Hour))
	}
	if s := v.Sleeps(); len(s) != 1 || s[0] != 3*time.Hour {
		t.Fatalf("Sleeps() = %v", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Sleep(ctx, time.Second); err == nil {
		t.Fatal("Sleep on a cancelled context returned nil")
	}
}

func TestOffsetOnlyMovesForward(t *testing.T) {
	base := time.Date(2025, 9, 9, 10, 50, 0, 0, time.UTC)
	o := NewOffset(func() time.Time { return base })
	o.Advance(25 * time.Hour)
	o.Advance(-time.Hour)
	if got := o.Now(); !got.Equal(base.Add(25 * time.Hour)) {
		t.Fatalf("Now() = %v", got)
	}
	o.Reset()
	if !o.Now().Equal(base) {
		t.Fatal("Reset did not drop the offset")
	}
}

func TestRealSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Real{}).Sleep(ctx, time.Hour); err == nil {
		t.Fatal("Real.Sleep ignored a cancelled context")
	}
}
