package tokenstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/mototest"
)

// s3TestEnv points the AWS SDK at endpoint with mototest's dummy credentials, and away from the machine's own AWS
// files, for the rest of the test.
func s3TestEnv(t *testing.T, endpoint string) {
	t.Helper()
	for _, kv := range mototest.Env(endpoint) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "no-credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
}

var s3BucketSeq atomic.Int64

// newTestS3Bucket creates a bucket of the test's own at endpoint (the environment must point at it) and returns its name.
func newTestS3Bucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("bipsync-test-%d-%d", os.Getpid(), s3BucketSeq.Add(1))
	st, err := newS3(t.Context(), S3Config{Bucket: name, UsePathStyle: true, LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// newTestS3Store starts a moto server for the test, creates a bucket on it, and opens an s3 store on that bucket.
func newTestS3Store(t *testing.T) *s3Store {
	t.Helper()
	s3TestEnv(t, mototest.Start(t))
	return openTestS3Store(t, S3Config{Bucket: newTestS3Bucket(t)})
}

// openTestS3Store opens another store (another runner, with a lock directory of its own) on cfg's bucket.
func openTestS3Store(t *testing.T, cfg S3Config) *s3Store {
	t.Helper()
	cfg.UsePathStyle = true
	if cfg.LockDir == "" {
		cfg.LockDir = t.TempDir()
	}
	st, err := NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := st.(*s3Store)
	if !ok {
		t.Fatalf("NewS3 returned a %T", st)
	}
	return s
}

// newParallelS3Store is newTestS3Store for parallel tests: it leaves the environment alone and gives the SDK the
// endpoint, the region and the credentials itself.
func newParallelS3Store(t testing.TB) *s3Store {
	t.Helper()
	endpoint := mototest.Start(t)
	opts := []func(*config.LoadOptions) error{
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("mototest-access-key", "mototest-secret-key", "")),
		config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}),
	}
	cfg := S3Config{Bucket: fmt.Sprintf("bipsync-test-%d-%d", os.Getpid(), s3BucketSeq.Add(1)), Endpoint: endpoint,
		UsePathStyle: true, LockDir: t.TempDir()}
	st, err := newS3(t.Context(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", cfg.Bucket, err)
	}
	return st
}

// s3ReadRaw returns the object of key's record, read without the store's code (nil when there is none).
func s3ReadRaw(t *testing.T, st *s3Store, key Key) []byte {
	t.Helper()
	out, err := st.client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(st.bucket), Key: aws.String(st.objectKey(key))})
	if err != nil {
		if strings.Contains(err.Error(), "NoSuchKey") {
			return nil
		}
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// s3WriteRaw puts data as key's record without any condition, as someone editing the bucket by hand would.
func s3WriteRaw(t *testing.T, st *s3Store, key Key, data []byte) {
	t.Helper()
	if _, err := st.client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(st.bucket),
		Key: aws.String(st.objectKey(key)), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
}

// A record saved in one store is loaded by another on the bucket, as one object under the key prefix that holds
// nothing in clear; a repeat of a save that landed succeeds; a stale or duplicate first save is a *ConflictError that
// names what the bucket holds.
func TestS3Store_SaveLoadConditional(t *testing.T) {
	st := newTestS3Store(t)
	key := testKey(testSeed)
	rec := sampleRecord()
	if err := saveLocked(t, st, key, rec, nil); err != nil {
		t.Fatalf("first save: %v", err)
	}
	raw := s3ReadRaw(t, st, key)
	if !bytes.HasPrefix(raw, []byte(envelopePrefix+".")) {
		t.Fatalf("object %s holds %q...; want a sealed envelope", st.objectKey(key), raw[:min(len(raw), 16)])
	}
	assertNoSecret(t, "the object", string(raw))
	if got := st.objectKey(key); got != DefaultS3KeyPrefix+string(key) {
		t.Fatalf("object key %q; want %q", got, DefaultS3KeyPrefix+string(key))
	}

	other := openTestS3Store(t, S3Config{Bucket: st.bucket})
	got, err := other.Load(t.Context(), key, testSeed)
	if err != nil || !recordsEqual(got, rec) {
		t.Fatalf("load from another store: got %+v, %v; want the saved record", got, err)
	}
	if err := saveLocked(t, other, key, rec, nil); err != nil {
		t.Fatalf("repeating the save that landed: %v; want success", err)
	}
	dup := nextRecord(rec)
	dup.Generation = rec.Generation
	err = saveLocked(t, other, key, dup, nil)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Current == nil || !ce.Current.Matches(rec.Revision()) {
		t.Fatalf("a second first save: got %v; want a *ConflictError naming the revision held", err)
	}

	next := nextRecord(rec)
	if err := saveLocked(t, st, key, next, rec.Revision().Ptr()); err != nil {
		t.Fatalf("save replacing the held record: %v", err)
	}
	if err := saveLocked(t, st, key, next, rec.Revision().Ptr()); err != nil {
		t.Fatalf("repeating a replacing save that landed: %v; want success", err)
	}
	stale := nextRecord(rec)
	err = saveLocked(t, other, key, stale, rec.Revision().Ptr())
	if !errors.As(err, &ce) || ce.Current == nil || !ce.Current.Matches(next.Revision()) {
		t.Fatalf("a stale save: got %v; want a *ConflictError naming the newer revision", err)
	}
	if got, err := st.Load(t.Context(), key, testSeed); err != nil || !recordsEqual(got, next) {
		t.Fatalf("after the refused save: got %+v, %v; want the newer record kept", got, err)
	}
	if got, err := st.Load(t.Context(), testKey("no such chain"), testSeed); got != nil || err != nil {
		t.Fatalf("a chain with no record: got %+v, %v; want nil, nil", got, err)
	}
	if _, err := st.Load(t.Context(), key, "another seed"); !errors.Is(err, ErrCorrupt) ||
		!strings.Contains(err.Error(), "s3://"+st.bucket+"/"+st.objectKey(key)) {
		t.Fatalf("load with another seed: got %v; want an ErrCorrupt naming the object", err)
	}
}

// Runners on many machines (stores with locks of their own) that replace one revision at the same moment: S3's
// If-Match lets exactly one of them through, whatever the interleaving of their reads and writes.
func TestS3Store_ConcurrentSavesOneWins(t *testing.T) {
	st := newTestS3Store(t)
	key := testKey(testSeed)
	rec := sampleRecord()
	if err := st.Save(t.Context(), key, testSeed, rec, nil); err != nil {
		t.Fatal(err)
	}
	const runners = 8
	stores := make([]*s3Store, runners)
	for i := range stores {
		stores[i] = openTestS3Store(t, S3Config{Bucket: st.bucket})
	}
	for round := range 3 {
		held, err := st.Load(t.Context(), key, testSeed)
		if err != nil {
			t.Fatal(err)
		}
		var wins, conflicts atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, s := range stores {
			wg.Go(func() {
				<-start
				err := s.Save(t.Context(), key, testSeed, nextRecord(held), held.Revision().Ptr())
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != runners-1 {
			t.Fatalf("round %d: %d saves won and %d conflicted; want 1 and %d", round, wins.Load(), conflicts.Load(), runners-1)
		}
		if got, err := st.Load(t.Context(), key, testSeed); err != nil || got.Generation != held.Generation+1 {
			t.Fatalf("round %d: got %+v, %v; want the winner's record", round, got, err)
		}
	}
}

// A claim is an object of its own under ClaimKey: the first PutClaim of a head wins, a second runner's is refused, a
// take-over replaces the claim it names, and none of it touches the chain's record.
func TestS3Store_Claims(t *testing.T) {
	st := newTestS3Store(t)
	other := openTestS3Store(t, S3Config{Bucket: st.bucket})
	key := testKey(testSeed)
	rec := sampleRecord()
	if err := st.Save(t.Context(), key, testSeed, rec, nil); err != nil {
		t.Fatal(err)
	}
	mine := &Claim{ID: NewRecordID(), Head: rec.Revision(), Holder: "runner-a", At: time.Now().UTC(), TTL: time.Minute}
	theirs := &Claim{ID: NewRecordID(), Head: rec.Revision(), Holder: "runner-b", At: time.Now().UTC(), TTL: time.Minute}
	if c, err := st.LoadClaim(t.Context(), key, testSeed); c != nil || err != nil {
		t.Fatalf("before any claim: got %+v, %v", c, err)
	}
	if err := st.PutClaim(t.Context(), key, testSeed, mine, nil); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := st.PutClaim(t.Context(), key, testSeed, mine, nil); err != nil {
		t.Fatalf("repeating the claim that landed: %v; want success", err)
	}
	if err := other.PutClaim(t.Context(), key, testSeed, theirs, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second runner's claim: got %v; want ErrConflict", err)
	}
	got, err := other.LoadClaim(t.Context(), key, testSeed)
	if err != nil || got == nil || got.ID != mine.ID || got.Holder != "runner-a" || got.Head != rec.Revision() {
		t.Fatalf("load claim: got %+v, %v; want the first runner's", got, err)
	}
	if err := other.PutClaim(t.Context(), key, testSeed, theirs, mine); err != nil {
		t.Fatalf("take-over: %v", err)
	}
	if err := st.PutClaim(t.Context(), key, testSeed, &Claim{ID: NewRecordID(), Head: rec.Revision(), Holder: "runner-a",
		At: time.Now().UTC(), TTL: time.Minute}, mine); !errors.Is(err, ErrConflict) {
		t.Fatalf("replacing a claim that was taken over: got %v; want ErrConflict", err)
	}
	if raw := s3ReadRaw(t, st, ClaimKey(key)); raw == nil {
		t.Fatalf("no object %s; want the claim there", st.objectKey(ClaimKey(key)))
	}
	if got, err := st.Load(t.Context(), key, testSeed); err != nil || !recordsEqual(got, rec) {
		t.Fatalf("the record after claims: got %+v, %v; want it untouched", got, err)
	}
	if !st.Traits().Claims || !st.Traits().AtomicSave || st.Traits().SharedLock || !st.Traits().Persistent {
		t.Fatalf("traits %+v; want persistent, atomic saves and claims, no shared lock", st.Traits())
	}
}

// Lock queues the processes of one machine on a chain (a file lock), and leaves other chains alone.
func TestS3Store_LockExcludesOnThisMachine(t *testing.T) {
	st := newTestS3Store(t)
	other := openTestS3Store(t, S3Config{Bucket: st.bucket, LockDir: st.lockDir})
	key := testKey(testSeed)
	unlock, err := st.Lock(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if u, err := other.Lock(ctx, key); !errors.Is(err, context.DeadlineExceeded) {
		if u != nil {
			mustUnlock(t, u)
		}
		t.Fatalf("while held: got %v; want a wait ending in context.DeadlineExceeded", err)
	}
	if u, err := other.Lock(t.Context(), testKey("other chain")); err != nil {
		t.Fatalf("another chain: %v", err)
	} else {
		mustUnlock(t, u)
	}
	mustUnlock(t, unlock)
	if u, err := other.Lock(t.Context(), key); err != nil {
		t.Fatalf("after release: %v", err)
	} else {
		mustUnlock(t, u)
	}
}

// headerProxy forwards to the S3 server at endpoint, dropping the request headers named in drop (as a server or proxy
// that ignores conditional writes would), and counts PUT requests by object key.
type headerProxy struct {
	srv  *httptest.Server
	drop []string
	mu   sync.Mutex
	puts map[string]int
	// conflicts is how many PUTs of a path to answer with 409 ConditionalRequestConflict instead of forwarding them.
	conflicts map[string]int
}

func newHeaderProxy(t *testing.T, endpoint string, drop ...string) *headerProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &headerProxy{drop: drop, puts: map[string]int{}, conflicts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range p.drop {
			r.Header.Del(h)
		}
		if r.Method == http.MethodPut {
			p.mu.Lock()
			p.puts[r.URL.Path]++
			conflict := p.conflicts[r.URL.Path] > 0
			if conflict {
				p.conflicts[r.URL.Path]--
			}
			p.mu.Unlock()
			if conflict {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusConflict)
				_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict</Code>`+
					`<Message>A conflicting conditional operation is currently in progress against this resource.</Message></Error>`)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// putsOf returns how many PUT requests reached path.
func (p *headerProxy) putsOf(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.puts[path]
}

// A 409 ConditionalRequestConflict (another conditional write was in flight) over an object that still holds what the
// save replaces is tried again, for a first record and for a replacing one; past the bound it is a conflict.
func TestS3Store_ConditionalRequestConflictRetried(t *testing.T) {
	endpoint := mototest.Start(t)
	s3TestEnv(t, endpoint)
	bucket := newTestS3Bucket(t)
	proxy := newHeaderProxy(t, endpoint)
	st := openTestS3Store(t, S3Config{Bucket: bucket, Endpoint: proxy.srv.URL})
	key := testKey(testSeed)
	path := "/" + bucket + "/" + st.objectKey(key)
	setConflicts := func(n int) {
		proxy.mu.Lock()
		proxy.conflicts[path] = n
		proxy.mu.Unlock()
	}
	rec := sampleRecord()
	setConflicts(1)
	if err := st.Save(t.Context(), key, testSeed, rec, nil); err != nil {
		t.Fatalf("first save after a 409: %v; want it tried again", err)
	}
	next := nextRecord(rec)
	setConflicts(2)
	if err := st.Save(t.Context(), key, testSeed, next, rec.Revision().Ptr()); err != nil {
		t.Fatalf("replacing save after two 409s: %v; want it tried again", err)
	}
	if got := proxy.putsOf(path); got != 5 {
		t.Fatalf("%d puts of the record; want 5 (two saves, three refused)", got)
	}
	setConflicts(s3ConflictAttempts)
	err := st.Save(t.Context(), key, testSeed, nextRecord(next), next.Revision().Ptr())
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("after %d 409s: got %v; want a *ConflictError", s3ConflictAttempts, err)
	}
	if got, err := st.Load(t.Context(), key, testSeed); err != nil || !recordsEqual(got, next) {
		t.Fatalf("got %+v, %v; want the second record kept", got, err)
	}
}

// A bucket that ignores conditional writes is caught by the probe before anything is written or exchanged: Lock and
// Save fail with ErrConditionalWritesIgnored and say what to do, and no record reaches the bucket. Either header
// ignored is caught.
func TestS3Store_ProbeCatchesIgnoredConditions(t *testing.T) {
	endpoint := mototest.Start(t)
	s3TestEnv(t, endpoint)
	for _, drop := range [][]string{{"If-None-Match", "If-Match"}, {"If-Match"}, {"If-None-Match"}} {
		t.Run(strings.Join(drop, "+"), func(t *testing.T) {
			bucket := newTestS3Bucket(t)
			proxy := newHeaderProxy(t, endpoint, drop...)
			st := openTestS3Store(t, S3Config{Bucket: bucket, Endpoint: proxy.srv.URL})
			key := testKey(testSeed)
			for _, op := range []struct {
				name string
				run  func() error
			}{
				{"lock", func() error {
					u, err := st.Lock(t.Context(), key)
					if u != nil {
						_ = u()
					}
					return err
				}},
				{"save", func() error { return st.Save(t.Context(), key, testSeed, sampleRecord(), nil) }},
				{"claim", func() error {
					return st.PutClaim(t.Context(), key, testSeed, &Claim{ID: NewRecordID(), Head: sampleRecord().Revision(), TTL: time.Minute}, nil)
				}},
			} {
				err := op.run()
				if !errors.Is(err, ErrConditionalWritesIgnored) {
					t.Fatalf("%s: got %v; want ErrConditionalWritesIgnored", op.name, err)
				}
				for _, want := range []string{"ignored a conditional write", "s3 token store needs S3 conditional writes",
					"If-None-Match / If-Match", bucket, DefaultS3KeyPrefix + S3ProbeName, "nothing was exchanged"} {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("%s: got %q; want it to say %q", op.name, err, want)
					}
				}
			}
			direct := openTestS3Store(t, S3Config{Bucket: bucket})
			if raw := s3ReadRaw(t, direct, key); raw != nil {
				t.Fatal("a record reached a bucket that ignores conditional writes")
			}
			if raw := s3ReadRaw(t, direct, ClaimKey(key)); raw != nil {
				t.Fatal("a claim reached a bucket that ignores conditional writes")
			}
		})
	}
}

// The probe runs once per process and bucket: the first store's first use puts the probe three times (create, a
// refused repeat, a refused If-Match), later stores on the bucket put nothing more, and a later process (the cache
// emptied) sends two puts that are both refused, leaving the probe object as it was.
func TestS3Store_ProbeOncePerProcess(t *testing.T) {
	endpoint := mototest.Start(t)
	s3TestEnv(t, endpoint)
	bucket := newTestS3Bucket(t)
	proxy := newHeaderProxy(t, endpoint)
	cfg := S3Config{Bucket: bucket, Endpoint: proxy.srv.URL}
	st := openTestS3Store(t, cfg)
	key := testKey(testSeed)
	if err := st.Save(t.Context(), key, testSeed, sampleRecord(), nil); err != nil {
		t.Fatal(err)
	}
	probePath := "/" + bucket + "/" + DefaultS3KeyPrefix + S3ProbeName
	if got := proxy.putsOf(probePath); got != 3 {
		t.Fatalf("first use: %d puts of the probe; want 3", got)
	}
	direct := openTestS3Store(t, S3Config{Bucket: bucket})
	head := func() string {
		out, err := direct.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(DefaultS3KeyPrefix + S3ProbeName)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ETag) + " " + out.LastModified.String()
	}
	before := head()

	again := openTestS3Store(t, cfg)
	if u, err := again.Lock(t.Context(), key); err != nil {
		t.Fatal(err)
	} else {
		mustUnlock(t, u)
	}
	if got := proxy.putsOf(probePath); got != 3 {
		t.Fatalf("another store in this process: %d puts of the probe in all; want still 3", got)
	}

	probed.Delete(again.probeKey)       // as in a new process
	time.Sleep(1100 * time.Millisecond) // a write now would change LastModified, which has a resolution of a second
	if u, err := again.Lock(t.Context(), key); err != nil {
		t.Fatalf("a later process's probe: %v; want success", err)
	} else {
		mustUnlock(t, u)
	}
	if got := proxy.putsOf(probePath); got != 5 {
		t.Fatalf("a later process: %d puts of the probe in all; want 5", got)
	}
	if after := head(); after != before {
		t.Fatalf("the probe object changed from %s to %s; want a later probe's writes refused", before, after)
	}
}

// Failures a user can fix each give an error that names the bucket and the object, says what to do, and quotes no
// credential; none of them writes anything.
func TestS3Store_Faults(t *testing.T) {
	key := testKey(testSeed)
	check := func(t *testing.T, err error, bucket string, wants ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("got success; want an error")
		}
		msg := err.Error()
		t.Log(msg)
		for _, want := range append([]string{"s3://" + bucket + "/" + DefaultS3KeyPrefix}, wants...) {
			if !strings.Contains(msg, want) {
				t.Errorf("got %q; want it to say %q", msg, want)
			}
		}
		for _, secret := range []string{os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")} {
			if secret != "" && strings.Contains(msg, secret) {
				t.Errorf("the error quotes a credential: %q", msg)
			}
		}
		assertNoSecret(t, "the error", msg)
	}
	ops := func(st *s3Store) map[string]func() error {
		return map[string]func() error{
			"lock": func() error {
				u, err := st.Lock(t.Context(), key)
				if u != nil {
					_ = u()
				}
				return err
			},
			"load": func() error { _, err := st.Load(t.Context(), key, testSeed); return err },
			"save": func() error { return st.Save(t.Context(), key, testSeed, sampleRecord(), nil) },
		}
	}

	t.Run("wrong credentials", func(t *testing.T) {
		endpoint := mototest.StartAuth(t, 1) // the bucket is created, then every key is unknown
		s3TestEnv(t, endpoint)
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-key-d0n0tl34k")
		bucket := newTestS3Bucket(t)
		st := openTestS3Store(t, S3Config{Bucket: bucket})
		for name, op := range ops(st) {
			err := op()
			check(t, err, bucket, "S3 refused the credentials", "InvalidAccessKeyId")
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s: got %v; want ErrUnavailable", name, err)
			}
		}
	})
	t.Run("missing bucket", func(t *testing.T) {
		s3TestEnv(t, mototest.Start(t))
		st := openTestS3Store(t, S3Config{Bucket: "no-such-bucket-here"})
		for name, op := range ops(st) {
			err := op()
			check(t, err, "no-such-bucket-here", "the bucket does not exist")
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s: got %v; want ErrUnavailable", name, err)
			}
		}
	})
	t.Run("endpoint down", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + l.Addr().String()
		_ = l.Close()
		s3TestEnv(t, down)
		t.Setenv("AWS_MAX_ATTEMPTS", "1")
		st := openTestS3Store(t, S3Config{Bucket: "some-bucket"})
		for _, op := range ops(st) {
			check(t, op(), "some-bucket", "cannot reach the S3 endpoint", "connection refused")
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		s3TestEnv(t, mototest.Start(t))
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		st := openTestS3Store(t, S3Config{Bucket: "some-bucket"})
		check(t, st.Save(t.Context(), key, testSeed, sampleRecord(), nil), "some-bucket", "no AWS credentials")
	})
}

// NewS3 refuses settings S3 would refuse, naming the setting, and sends nothing: a store on an endpoint that is down
// opens fine.
func TestNewS3_Config(t *testing.T) {
	s3TestEnv(t, "http://127.0.0.1:9")
	for _, tc := range []struct {
		cfg  S3Config
		want string
	}{
		{S3Config{Bucket: "Upper_Case"}, "bucket"},
		{S3Config{Bucket: "ab"}, "bucket"},
		{S3Config{Bucket: "b..c"}, "bucket"},
		{S3Config{Bucket: "good-bucket", KeyPrefix: "/abs/"}, "key_prefix"},
		{S3Config{Bucket: "good-bucket", KeyPrefix: "a\nb"}, "key_prefix"},
		{S3Config{Bucket: "good-bucket", Endpoint: "ftp://x"}, "endpoint"},
		{S3Config{Bucket: "good-bucket", Endpoint: "https://user:hunter2@s3.example.com"}, "endpoint"},
		{S3Config{Bucket: "good-bucket", Profile: "no-such-profile"}, "no-such-profile"},
	} {
		_, err := NewS3(t.Context(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%+v: got %v; want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	if _, err := NewS3(t.Context(), S3Config{Bucket: "good-bucket"}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("without a region: got %v; want an error naming region", err)
	}
	st, err := NewS3(t.Context(), S3Config{Bucket: "good-bucket", Region: "eu-west-2", KeyPrefix: "ci/chains/",
		Endpoint: "https://s3.example.com/base", LockDir: t.TempDir()})
	if err != nil {
		t.Fatalf("a store on an endpoint that is down: %v; want it opened without network I/O", err)
	}
	if got, want := st.Describe(), `s3 store: bucket "good-bucket", objects under "ci/chains/", region eu-west-2, endpoint https://s3.example.com/base`; got != want {
		t.Fatalf("Describe: %q; want %q", got, want)
	}
	s3st, ok := st.(*s3Store)
	if !ok {
		t.Fatalf("NewS3 returned a %T", st)
	}
	if got := s3st.objectKey(testKey(testSeed)); got != "ci/chains/"+string(testKey(testSeed)) {
		t.Fatalf("object key %q", got)
	}
	cfgStore, err := New(Config{Backend: "s3", S3: S3Config{Bucket: "good-bucket", Region: "eu-west-2"}})
	if err != nil || !strings.HasPrefix(cfgStore.Describe(), "s3 store: ") {
		t.Fatalf("New with backend s3: got %v, %v", cfgStore, err)
	}
	if err := CheckBackend("s3"); err != nil {
		t.Fatal(err)
	}
}
