package bipsynctest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
)

func TestClock(t *testing.T) {
	t.Parallel()
	c := bipsynctest.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Errorf("Now: got %v; want %v", got, start)
	}
	c.Advance(90 * time.Minute)
	if got, want := c.Now(), start.Add(90*time.Minute); !got.Equal(want) {
		t.Errorf("after Advance: got %v; want %v", got, want)
	}
	later := start.Add(31 * 24 * time.Hour)
	c.Set(later)
	if got := c.Now(); !got.Equal(later) {
		t.Errorf("after Set: got %v; want %v", got, later)
	}

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { c.Advance(time.Second); _ = c.Now() })
	}
	wg.Wait()
	if got, want := c.Now(), later.Add(50*time.Second); !got.Equal(want) {
		t.Errorf("after concurrent Advance: got %v; want %v", got, want)
	}
}
