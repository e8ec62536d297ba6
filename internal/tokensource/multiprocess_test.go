package tokensource

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bipsync/terraform-provider-bipsync/internal/bipsync"
	"github.com/bipsync/terraform-provider-bipsync/internal/bipsynctest"
	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore"
)

// Environment of a child process in TestSource_Token_sharedFileStoreAcrossProcesses.
const (
	envChildURL   = "BIPSYNC_TEST_CHILD_URL"
	envChildDir   = "BIPSYNC_TEST_CHILD_STORE"
	envChildSeed  = "BIPSYNC_TEST_CHILD_SEED"
	envChildOpens = "BIPSYNC_TEST_CHILD_OPENS"
)

const (
	childProcesses  = 8
	childGoroutines = 16
	childOpens      = 50
)

// TestMain lets the test binary act as one of the processes sharing a store.
func TestMain(m *testing.M) {
	if url := os.Getenv(envChildURL); url != "" {
		if err := runChild(url, os.Getenv(envChildDir), os.Getenv(envChildSeed), os.Getenv(envChildOpens)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild opens the chain from many goroutines, as parallel Terraform walks of one provider process would.
func runChild(url, dir, seed, opens string) error {
	n, err := strconv.Atoi(opens)
	if err != nil {
		return err
	}
	client, err := bipsync.New(bipsync.Config{BaseURL: url, ClientID: "cli-conf", ClientSecret: "sec-conf"})
	if err != nil {
		return err
	}
	store, err := tokenstore.NewFile(dir)
	if err != nil {
		return err
	}
	src, err := New(Options{Client: client, Store: store, ClientSecret: "sec-conf"})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, childGoroutines)
	for range childGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				r, err := src.Token(context.Background(), Request{RefreshToken: seed, MinValidity: 15 * time.Minute})
				if err != nil {
					errs <- err
					return
				}
				if r.AccessToken == "" {
					errs <- fmt.Errorf("empty access token")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// TestSource_Token_sharedFileStoreAcrossProcesses runs 8 OS processes × 16 goroutines × 50 opens of one chain against
// one file store: the store's lock and the reload under it must make all 6400 opens cost one exchange. Repeated
// rounds on new chains show it is not luck.
func TestSource_Token_sharedFileStoreAcrossProcesses(t *testing.T) {
	t.Parallel()
	// Each round is a new chain, so a new due point. The race detector slows each child about fivefold.
	rounds := 20
	if raceEnabled {
		rounds = 5
	}
	if testing.Short() {
		rounds = 1
	}
	srv := bipsynctest.NewServer(bipsynctest.Options{})
	srv.AddClient("cli-conf", "sec-conf")
	url := srv.Start()
	t.Cleanup(srv.Close)
	start := time.Now()
	for round := range rounds {
		dir := t.TempDir()
		seed := srv.IssueRefreshToken("cli-conf", []string{"read", "write"})
		before := srv.Stats().RefreshExchanges
		var wg sync.WaitGroup
		outputs := make([][]byte, childProcesses)
		errs := make([]error, childProcesses)
		for i := range childProcesses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), envChildURL+"="+url, envChildDir+"="+dir, envChildSeed+"="+seed,
					envChildOpens+"="+strconv.Itoa(childOpens))
				outputs[i], errs[i] = cmd.CombinedOutput()
			}()
		}
		wg.Wait()
		for i := range childProcesses {
			if errs[i] != nil {
				t.Errorf("round %d, process %d: %v: %s", round, i, errs[i], outputs[i])
			}
		}
		if got := srv.Stats().RefreshExchanges - before; got != 1 {
			t.Fatalf("round %d: %d processes × %d goroutines × %d opens caused %d exchanges; want 1",
				round, childProcesses, childGoroutines, childOpens, got)
		}
	}
	t.Logf("%d rounds of %d processes × %d goroutines × %d opens: 1 exchange each, %s in all",
		rounds, childProcesses, childGoroutines, childOpens, time.Since(start).Round(time.Millisecond))
}
