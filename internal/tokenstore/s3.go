package tokenstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// DefaultS3KeyPrefix is the prefix of the s3 store's object keys when none is configured.
const DefaultS3KeyPrefix = "terraform-provider-bipsync/"

// S3ProbeName is the name, under the key prefix, of the object the s3 store writes to check that the bucket honours
// conditional writes.
const S3ProbeName = "probe"

const (
	// s3Timeout bounds one store operation (with the SDK's own retries) when the caller's context does not bound it
	// sooner: a bucket that does not answer must not hang Terraform with a chain lock held.
	s3Timeout = 60 * time.Second
	// maxS3KeyPrefix leaves room in S3's 1,024-byte object key for a chain key (64 characters).
	maxS3KeyPrefix = 1024 - 64
	// s3ConflictAttempts bounds the puts of one save that S3 refuses with 409 ConditionalRequestConflict.
	s3ConflictAttempts = 3
)

// ErrConditionalWritesIgnored marks a bucket (or an S3-compatible server) that accepted a write whose condition did not
// hold: the s3 store cannot keep runners apart there, and refuses to be used.
var ErrConditionalWritesIgnored = errors.New("the bucket ignored a conditional write")

// S3Config configures NewS3, in the words of Terraform's s3 state backend.
type S3Config struct {
	// Bucket is the bucket that holds the records. Required.
	Bucket string
	// KeyPrefix is put before every object key (DefaultS3KeyPrefix when empty): a record is <KeyPrefix><chain key>.
	KeyPrefix string
	// Region is the bucket's region; empty: the SDK's own (AWS_REGION, AWS_DEFAULT_REGION, the profile's region).
	Region string
	// Endpoint is the S3 endpoint URL, for S3-compatible servers; empty: the SDK's own (AWS_ENDPOINT_URL_S3,
	// AWS_ENDPOINT_URL, the profile's endpoint_url), else AWS.
	Endpoint string
	// UsePathStyle addresses the bucket in the URL path (https://host/bucket/key) rather than the host name, as most
	// S3-compatible servers need.
	UsePathStyle bool
	// Profile is the shared configuration profile whose credentials and settings are used; empty: AWS_PROFILE, else
	// the default profile. Credentials come from the SDK's default chain: environment, shared files, web identity
	// (GitHub Actions' OIDC), container and instance roles.
	Profile string
	// LockDir holds the per-chain lock files; default the user cache directory's terraform-provider-bipsync/locks.
	LockDir string
	// Credentials, when set, replace the SDK's default chain: for programs that hold credentials of their own (a test
	// harness reading the bucket its runners share). The provider never sets it.
	Credentials aws.CredentialsProvider
}

// s3Store is the store NewS3 returns.
type s3Store struct {
	client   *s3.Client
	bucket   string
	prefix   string
	lockDir  string
	where    string   // bucket, prefix, endpoint and region, for Describe and errors
	secrets  []string // credential values from the environment, kept out of every error
	probeKey string   // identifies this bucket and prefix at this endpoint in probed

	probeMu sync.Mutex // one probe at a time
}

// probed holds the buckets (with their prefix and endpoint) whose conditional writes this process has checked.
var probed sync.Map

var s3BucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// CheckS3Bucket refuses a name that S3 would refuse as a bucket name.
func CheckS3Bucket(name string) error {
	if !s3BucketPattern.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("%q is not an S3 bucket name: use 3 to 63 lower-case letters, digits, dots and hyphens, "+
			"starting and ending with a letter or digit", name)
	}
	return nil
}

// CheckS3KeyPrefix refuses a key prefix that cannot start an S3 object key.
func CheckS3KeyPrefix(prefix string) error {
	switch {
	case !utf8.ValidString(prefix) || strings.ContainsFunc(prefix, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("the key prefix %q holds control characters or is not UTF-8", prefix)
	case strings.HasPrefix(prefix, "/"):
		return fmt.Errorf("the key prefix %q starts with \"/\": S3 object keys do not, leave it out", prefix)
	case len(prefix) > maxS3KeyPrefix:
		return fmt.Errorf("the key prefix is %d bytes long; at most %d leave room for the chain key in S3's 1,024", len(prefix), maxS3KeyPrefix)
	}
	return nil
}

// CheckS3Endpoint refuses an endpoint that is not an http or https URL of a host. It never quotes user information.
func CheckS3Endpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		return errors.New("the S3 endpoint is not a URL: give one like https://s3.example.com")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return errors.New("the S3 endpoint must be an http or https URL with a host, like https://s3.example.com")
	case u.User != nil:
		return errors.New("the S3 endpoint holds user information: leave it out, and give credentials the way the AWS " +
			"SDK reads them (environment, profile, role)")
	}
	return nil
}

// NewS3 returns a store that keeps one object per chain in an S3 bucket (or an S3-compatible server that supports
// conditional writes), for runners on many machines. Records are sealed (see Seal): the bucket never holds a token in
// clear.
//
// Every write is conditional: a new record is put with If-None-Match "*", a record that replaces another with If-Match
// on the ETag of the object read just before, after checking that the object holds the replaced revision. S3 refuses
// either when another runner wrote first, so a store never goes back. Because S3 has no lock, the store is a Claimer
// (a claim is an object of its own, written with the same conditions), so that runners can claim a head before
// exchanging it; Lock is a file lock on this machine, so that its processes queue rather than race each other. Before its first write the store checks, once per process, that the bucket refuses a conditional
// write whose condition does not hold (see the probe object, S3ProbeName), and refuses to work with one that does not.
//
// NewS3 reads the AWS configuration (files and environment) but sends nothing; the first operation does.
func NewS3(ctx context.Context, cfg S3Config) (Store, error) {
	return newS3(ctx, cfg)
}

// newS3 is NewS3 with more options for the AWS configuration (tests give credentials without the environment).
func newS3(ctx context.Context, cfg S3Config, extra ...func(*config.LoadOptions) error) (*s3Store, error) {
	if err := CheckS3Bucket(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3 token store bucket: %w", err)
	}
	prefix := cfg.KeyPrefix
	if prefix == "" {
		prefix = DefaultS3KeyPrefix
	}
	if err := CheckS3KeyPrefix(prefix); err != nil {
		return nil, fmt.Errorf("s3 token store key_prefix: %w", err)
	}
	if cfg.Endpoint != "" {
		if err := CheckS3Endpoint(cfg.Endpoint); err != nil {
			return nil, fmt.Errorf("s3 token store endpoint: %w", err)
		}
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, append(opts, extra...)...)
	if err != nil {
		// The SDK's message names the profile or file, not credentials.
		return nil, fmt.Errorf("s3 token store for bucket %q: read the AWS configuration: %w", cfg.Bucket, err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("s3 token store for bucket %q needs the bucket's region: set region in the token_store "+
			"block (or BIPSYNC_TOKEN_STORE_REGION), or AWS_REGION, or the profile's region", cfg.Bucket)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.UsePathStyle
		// Checksums only where S3 requires them: many S3-compatible servers refuse the SDK's default trailing checksums,
		// and the envelope is authenticated anyway. The SDK's logger writes to stderr, which is the provider's log
		// channel: nothing of it belongs there (failures are returned as errors).
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.Logger = logging.Nop{}
	})
	lockDir := cfg.LockDir
	if lockDir == "" {
		d, err := cacheSubdir("locks")
		if err != nil {
			return nil, fmt.Errorf("s3 token store lock directory: %w", err)
		}
		lockDir = d
	}
	endpoint := cfg.Endpoint
	if endpoint == "" && client.Options().BaseEndpoint != nil {
		endpoint = *client.Options().BaseEndpoint
	}
	where := fmt.Sprintf("bucket %q, objects under %q, region %s", cfg.Bucket, prefix, awsCfg.Region)
	if endpoint != "" {
		where += ", endpoint " + endpointHost(endpoint)
	}
	return &s3Store{
		client:   client,
		bucket:   cfg.Bucket,
		prefix:   prefix,
		lockDir:  lockDir,
		where:    where,
		secrets:  envSecrets(),
		probeKey: endpoint + "\x00" + awsCfg.Region + "\x00" + cfg.Bucket + "\x00" + prefix,
	}, nil
}

// endpointHost is an endpoint's scheme, host and path, without anything else a URL could carry.
func endpointHost(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "(unparsable)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// envSecrets are the AWS credentials in the environment, which no error may quote even if a server echoed them.
func envSecrets() []string {
	var out []string
	for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		if v := os.Getenv(name); len(v) >= 4 {
			out = append(out, v)
		}
	}
	return out
}

func (s *s3Store) Traits() Traits {
	return Traits{Persistent: true, AtomicSave: true, Claims: true}
}

func (s *s3Store) Describe() string { return "s3 store: " + s.where }

// objectKey is the object that holds the entry key (a chain's record, or its claim under ClaimKey).
func (s *s3Store) objectKey(key Key) string { return s.prefix + string(key) }

// Lock takes a file lock on this machine, so that its processes queue; runners on other machines are kept apart by
// claims and conditional writes. It checks the bucket's conditional writes first (once per process), so that nothing
// is exchanged against a bucket that cannot keep runners apart.
func (s *s3Store) Lock(ctx context.Context, key Key) (func() error, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	if err := s.ensureConditional(ctx); err != nil {
		return nil, err
	}
	// Checked on every Lock, not once: cache cleaners remove idle directories.
	if err := ensurePrivateDir(s.lockDir); err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(s.lockDir, string(key)+".lock"))
}

func (s *s3Store) Load(ctx context.Context, key Key, seed string) (*Record, error) {
	if err := checkKeyCtx(ctx, key); err != nil {
		return nil, err
	}
	data, _, err := s.get(ctx, "load", key)
	if data == nil || err != nil {
		return nil, err
	}
	rec, err := Open(key, seed, data)
	if err != nil {
		return nil, fmt.Errorf("token store record s3://%s/%s: %w; it was not written for this seed or is damaged: move it "+
			"aside (aws s3 mv s3://%[1]s/%[2]s s3://%[1]s/moved-%[2]s), then seed the chain again", s.bucket, s.objectKey(key), err)
	}
	return rec, nil
}

func (s *s3Store) Save(ctx context.Context, key Key, seed string, rec *Record, replaces *Revision) error {
	return sealAndPut(ctx, s, key, seed, rec, replaces)
}

// LoadClaim reads the chain's claim, an object of its own (ClaimKey).
func (s *s3Store) LoadClaim(ctx context.Context, key Key, seed string) (*Claim, error) {
	return loadClaim(ctx, s, key, seed)
}

// PutClaim writes a claim with the same conditional put as a record.
func (s *s3Store) PutClaim(ctx context.Context, key Key, seed string, c, replaces *Claim) error {
	return putClaim(ctx, s, key, seed, c, replaces)
}

func (s *s3Store) getEnvelope(ctx context.Context, key Key) ([]byte, error) {
	data, _, err := s.get(ctx, "load", key)
	return data, err
}

// putEnvelope writes the object only if it still holds what the put replaces, with S3's own check: If-None-Match "*"
// when it replaces nothing, else If-Match on the ETag of the object read just before (after checking that its header
// holds the replaced revision). A refused write reads what the object holds: the envelope being put (an earlier put
// that landed although it reported a failure, or the SDK's retry of one that did) is success, anything else a
// *ConflictError. A 409 ConditionalRequestConflict (another conditional write to the object was in flight) over an
// object that still holds what the put replaces is tried again, as S3 advises.
func (s *s3Store) putEnvelope(ctx context.Context, key Key, data []byte, next Revision, replaces *Revision) error {
	if err := s.ensureConditional(ctx); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		in := &s3.PutObjectInput{
			Bucket:      aws.String(s.bucket),
			Key:         aws.String(s.objectKey(key)),
			ContentType: aws.String("text/plain"),
		}
		if replaces == nil {
			in.IfNoneMatch = aws.String("*")
		} else {
			cur, etag, err := s.get(ctx, "save", key)
			if err != nil {
				return err
			}
			current, err := s.revisionOf(key, cur)
			if err != nil {
				return err
			}
			if landed, err := checkReplace(current, replaces, next); landed || err != nil {
				return err
			}
			in.IfMatch = aws.String(etag)
		}
		err := s.put(ctx, in, data)
		if err == nil {
			return nil
		}
		if !isPreconditionFailed(err) {
			return s.fail(ctx, "save", key, err)
		}
		cur, _, gerr := s.get(ctx, "save", key)
		if gerr != nil {
			return gerr
		}
		current, cerr := s.revisionOf(key, cur)
		if cerr != nil {
			return cerr
		}
		if current != nil && current.Matches(next) {
			return nil
		}
		stillHolds := current == nil && replaces == nil || current != nil && replaces != nil && current.Matches(*replaces)
		if !isConcurrentConditional(err) || !stillHolds || attempt == s3ConflictAttempts {
			return &ConflictError{Replaces: replaces, Current: current}
		}
	}
}

// revisionOf is the revision of the envelope the object of key holds (nil: none). An envelope that does not parse is
// never replaced.
func (s *s3Store) revisionOf(key Key, data []byte) (*Revision, error) {
	current, err := currentRevision(data)
	if err != nil {
		return nil, fmt.Errorf("token store record s3://%s/%s: %w; it is left alone: move it aside if you are sure it is dead",
			s.bucket, s.objectKey(key), err)
	}
	return current, nil
}

// put runs one PutObject of data, bounded by s3Timeout.
func (s *s3Store) put(ctx context.Context, in *s3.PutObjectInput, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s3Timeout)
	defer cancel()
	in.Body = bytes.NewReader(data)
	in.ContentLength = aws.Int64(int64(len(data)))
	_, err := s.client.PutObject(ctx, in)
	return err
}

// get reads the object of the entry key: its body and ETag, or nil when there is none.
func (s *s3Store) get(ctx context.Context, op string, key Key) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s3Timeout)
	defer cancel()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.objectKey(key))})
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", s.fail(ctx, op, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxEnvelope+1))
	if err != nil {
		return nil, "", s.fail(ctx, op, key, err)
	}
	if len(data) > maxEnvelope {
		return nil, "", fmt.Errorf("token store object s3://%s/%s is larger than %d bytes, more than any record: it is "+
			"not one of this store's; move it aside", s.bucket, s.objectKey(key), maxEnvelope)
	}
	if out.ETag == nil || *out.ETag == "" {
		return nil, "", fmt.Errorf("token store object s3://%s/%s came without an ETag, which conditional writes need: "+
			"the server is not S3-compatible enough for the s3 token store", s.bucket, s.objectKey(key))
	}
	return data, *out.ETag, nil
}

// isConcurrentConditional tells whether S3 refused a conditional write because another one to the object was in flight.
func isConcurrentConditional(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ConditionalRequestConflict"
}

// isPreconditionFailed tells whether S3 refused a conditional write: 412 PreconditionFailed, or 409
// ConditionalRequestConflict (another conditional write to the object was in flight).
func isPreconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 412
}

// ensureConditional checks, once per process for this bucket and prefix, that the bucket refuses conditional writes
// whose condition does not hold: a put of the probe object with If-None-Match "*" when it exists, and a put with
// If-Match on an ETag it does not have. The first use of a bucket creates the probe object with the first put, and
// then tries again: that one must be refused. A failure to reach the bucket is not remembered.
func (s *s3Store) ensureConditional(ctx context.Context) error {
	if _, ok := probed.Load(s.probeKey); ok {
		return nil
	}
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if _, ok := probed.Load(s.probeKey); ok {
		return nil
	}
	probeKey := s.prefix + S3ProbeName
	body := []byte("terraform-provider-bipsync checks with this object that the bucket honours conditional writes.\n")
	try := func(in *s3.PutObjectInput) (refused bool, err error) {
		in.Bucket, in.Key, in.ContentType = aws.String(s.bucket), aws.String(probeKey), aws.String("text/plain")
		err = s.put(ctx, in, body)
		var nsk *types.NoSuchKey
		switch {
		case err == nil:
			return false, nil
		case isPreconditionFailed(err), errors.As(err, &nsk):
			return true, nil
		}
		return false, s.failObject(ctx, "check conditional writes with", probeKey, err)
	}
	refused, err := try(&s3.PutObjectInput{IfNoneMatch: aws.String("*")})
	if err != nil {
		return err
	}
	if !refused {
		// First use of this bucket and prefix: the probe is there now, so the same put must be refused.
		if refused, err = try(&s3.PutObjectInput{IfNoneMatch: aws.String("*")}); err != nil {
			return err
		}
		if !refused {
			return s.ignored(probeKey, `If-None-Match: "*" on an object that exists`)
		}
	}
	var made [16]byte
	_, _ = rand.Read(made[:])
	if refused, err = try(&s3.PutObjectInput{IfMatch: aws.String(`"` + hex.EncodeToString(made[:]) + `"`)}); err != nil {
		return err
	}
	if !refused {
		return s.ignored(probeKey, "If-Match on an ETag the object does not have")
	}
	probed.Store(s.probeKey, true)
	return nil
}

func (s *s3Store) ignored(probeKey, what string) error {
	return &ignoredError{msg: fmt.Sprintf("the bucket %q ignored a conditional write (it accepted a put of s3://%s/%s with %s, "+
		"which must be refused); the s3 token store needs S3 conditional writes (If-None-Match / If-Match) to keep runners "+
		"from overwriting each other's records, so it refuses to work here and nothing was exchanged: use AWS S3, or a "+
		"server that implements them, and check that no proxy drops the headers", s.bucket, s.bucket, probeKey, what)}
}

// ignoredError is the error of a bucket that ignored a conditional write. errors.Is(err, ErrConditionalWritesIgnored)
// holds.
type ignoredError struct{ msg string }

func (e *ignoredError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrConditionalWritesIgnored) hold.
func (e *ignoredError) Is(target error) bool { return target == ErrConditionalWritesIgnored }

// s3StoreError is an error of the s3 store. Its text names the operation, the bucket and the object and holds no
// credential; the errors it wraps are for errors.Is and errors.As, not for printing.
type s3StoreError struct {
	msg  string
	errs []error
}

func (e *s3StoreError) Error() string   { return e.msg }
func (e *s3StoreError) Unwrap() []error { return e.errs }

func (s *s3Store) fail(ctx context.Context, op string, key Key, err error) error {
	return s.failObject(ctx, op, s.objectKey(key), err)
}

// failObject words err for op on the object. When ctx ended, the error says so and wraps the context's cause; every
// other failure is an ErrUnavailable, with advice where the cause is a common one.
func (s *s3Store) failObject(ctx context.Context, op, object string, err error) error {
	what := fmt.Sprintf("%s s3://%s/%s: ", op, s.bucket, object)
	if ctx.Err() != nil {
		errs := []error{err}
		if cause := context.Cause(ctx); !errors.Is(err, cause) {
			errs = append(errs, cause)
		}
		return &s3StoreError{msg: what + s.quote(err), errs: errs}
	}
	if advice := s.advice(err); advice != "" {
		what += advice + ": "
	}
	return &s3StoreError{msg: what + s.quote(err), errs: []error{ErrUnavailable, err}}
}

// quote is err's text for an error message, without any credential from the environment.
func (s *s3Store) quote(err error) string { return scrub(err.Error(), s.secrets) }

// advice says what to do about the failures a user can fix.
func (s *s3Store) advice(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return "the bucket does not exist (or not in this region or at this endpoint): create it, or name another (bucket)"
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired":
			return "S3 refused the credentials: check the AWS credentials the provider runs with (AWS_ACCESS_KEY_ID and " +
				"AWS_SECRET_ACCESS_KEY, the profile, or the role) and that they have not expired"
		case "AccessDenied", "Forbidden":
			return "access denied: the credentials need s3:GetObject and s3:PutObject on the bucket's objects under the key prefix"
		case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
			return "the bucket is in another region: set region to the bucket's"
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to retrieve credentials"), strings.Contains(msg, "failed to refresh cached credentials"):
		return "no AWS credentials: give them as the AWS SDK reads them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
			"profile, web identity, or an instance or container role)"
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "no such host"), strings.Contains(msg, "i/o timeout"):
		return "cannot reach the S3 endpoint: is it right (endpoints.s3, AWS_ENDPOINT_URL_S3), and reachable from here?"
	}
	return ""
}
