// Package kvstore keeps the stores every process of a deployment shares in
// NATS JetStream key-value buckets, changed by compare-and-set: the
// registry of known issues and the re-run ledgers (interfaces of package
// triage). A deployment on an external NATS cluster uses them, so that a
// worker on another host sees the known issues a person registered on the
// first; an embedded deployment keeps the same stores in files under its
// data directory instead.
package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/internal/redact"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/triage"
)

// Stores are the shared stores of one deployment (one prefix) on NATS.
type Stores struct {
	prefix   string
	replicas int
	conn     *nats.Conn
	js       jetstream.JetStream
	now      func() time.Time
	timeout  time.Duration
	log      *slog.Logger

	mu    sync.Mutex
	ready bool // every bucket exists
	// The buckets, looked up once: a lookup asks the stream's leader,
	// and one asked during a cluster's election waits out its whole
	// timeout.
	kvs map[string]jetstream.KeyValue
	obj jetstream.ObjectStore

	Registry triage.Registry
	Ledger   triage.Ledger
	// Reports is the report store: every version of every report, in an
	// Object Store bucket, and the ledgers of who was told.
	Reports reports.Store
}

// Options say where the stores are.
type Options struct {
	// URL of the NATS server(s), as `--nats` gives it; CredsFile its
	// credentials.
	URL, CredsFile string
	// Prefix is the deployment's (`--nats-prefix`).
	Prefix string
	// Replicas of the buckets in a cluster (1 to 5): new buckets get this
	// many copies, existing ones are changed to it. 0 keeps the count of
	// what exists and makes new buckets with 1 (a one-shot command must
	// not shrink the service's buckets).
	Replicas int
	// Lazy returns at once, connecting in the background and making the
	// buckets on first use: for a service whose NATS server may not be up
	// yet (the embedded one a listen starts). Without it Open fails at
	// once when NATS is unreachable, as a one-shot command should.
	Lazy   bool
	Logger *slog.Logger
	// Now is the clock of the registry's history; default time.Now.
	Now func() time.Time
}

// validPrefix: 1 to 32 of [A-Za-z0-9_-], as the workflow's prefix.
func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > 32 {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Open connects to NATS and, unless o.Lazy, makes (or finds) the buckets.
// Close it when done.
func Open(ctx context.Context, o Options) (*Stores, error) {
	if !validPrefix(o.Prefix) {
		return nil, fmt.Errorf("NATS prefix %q: want 1 to 32 of [A-Za-z0-9_-]", o.Prefix)
	}
	if o.Replicas < 0 || o.Replicas > workflow.MaxReplicas {
		return nil, fmt.Errorf("%d replicas: want 1 to %d", o.Replicas, workflow.MaxReplicas)
	}
	// Reconnect for ever, soon: in a cluster, to another node when one
	// goes away.
	opts := []nats.Option{nats.Name("composeci stores"), nats.Timeout(5 * time.Second), nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond)}
	if o.Lazy {
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	conn, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", redact.URL(o.URL), err)
	}
	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s := &Stores{prefix: o.Prefix, replicas: o.Replicas, conn: conn, js: js, now: o.Now, timeout: 10 * time.Second, log: o.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.Registry, s.Ledger, s.Reports = registry{s}, ledger{s}, &reportStore{s: s}
	if !o.Lazy {
		if err := s.ensure(ctx); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return s, nil
}

// ensure makes the buckets once (again after a failure), retrying while
// the server answers that it is not ready (a fresh cluster elects its
// leader first).
func (s *Stores) ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	retry := func(name string, f func(context.Context) error) error {
		var err error
		for attempt, wait := 1, 100*time.Millisecond; ; attempt, wait = attempt+1, min(2*wait, 2*time.Second) {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = f(actx)
			cancel()
			var apiErr *jetstream.APIError
			permanent := errors.As(err, &apiErr) && !(workflow.CreateRace(err) && attempt <= 5) &&
				((apiErr.Code < 500 && apiErr.Code != 0) || apiErr.ErrorCode == replicasNotSupported)
			if err == nil || permanent || ctx.Err() != nil {
				break
			}
			if attempt%10 == 0 {
				// A bucket of N replicas needs N nodes up to be made.
				s.log.Warn("cannot make a bucket yet (are as many NATS cluster nodes up as replicas asked?); retrying", "bucket", name, "attempt", attempt, "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
		return nil
	}
	kvs := map[string]jetstream.KeyValue{}
	kv := func(which, what string) error {
		name := s.bucketName(which)
		return retry(name, func(ctx context.Context) error {
			replicas, err := s.replicasOf(ctx, "KV_"+name)
			if err != nil {
				return err
			}
			kvs[which], err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Description: "composeci: " + what,
				History: 5, Storage: jetstream.FileStorage, Replicas: replicas})
			return err
		})
	}
	for _, b := range []struct{ which, what string }{
		{knownBucket, "the registry of known issues"},
		{rerunsBucket, "the re-runs of each compose's openQA jobs"},
		{reportMetaBucket, "the versions of each compose's report, the indexes, the ledgers of mails and deliveries"},
	} {
		if err := kv(b.which, b.what); err != nil {
			return err
		}
	}
	name := s.bucketName(reportsBucket)
	if err := retry(name, func(ctx context.Context) error {
		replicas, err := s.replicasOf(ctx, "OBJ_"+name)
		if err != nil {
			return err
		}
		s.obj, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: name,
			Description: "composeci: every version of every compose check report (JSON, text, HTML)",
			Storage:     jetstream.FileStorage, Replicas: replicas})
		return err
	}); err != nil {
		return err
	}
	s.kvs, s.ready = kvs, true
	return nil
}

// replicasOf is the replica count to make or update a bucket's stream
// with: Options.Replicas, or the count it has when that is 0 (1 for a new
// one).
func (s *Stores) replicasOf(ctx context.Context, stream string) (int, error) {
	have, err := workflow.StreamReplicas(ctx, s.js, stream)
	if err != nil {
		return 0, err
	}
	switch {
	case s.replicas != 0 && have != 0 && have != s.replicas:
		s.log.Warn("changing the replicas of a bucket", "stream", stream, "from", have, "to", s.replicas)
	case s.replicas != 0:
	case have != 0:
		return have, nil
	default:
		return 1, nil
	}
	return s.replicas, nil
}

// Prefix is the deployment's prefix the stores are under.
func (s *Stores) Prefix() string { return s.prefix }

// replicasNotSupported is JetStream's answer to replicas asked of a
// server outside a cluster: no retry mends it.
const replicasNotSupported jetstream.ErrorCode = 10074

const (
	knownBucket      = "known"
	rerunsBucket     = "reruns"
	reportMetaBucket = "reportmeta"
	reportsBucket    = "reports"
)

func (s *Stores) bucketName(which string) string { return s.prefix + "_" + which }

// bucket finds a key-value bucket, making the buckets first if need be.
func (s *Stores) bucket(ctx context.Context, which string) (jetstream.KeyValue, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kvs[which], nil
}

// objects finds the report files' Object Store bucket.
func (s *Stores) objects(ctx context.Context) (jetstream.ObjectStore, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.obj, nil
}

// Close closes the connection Open made.
func (s *Stores) Close() {
	if s.conn != nil {
		s.conn.Close()
	}
}

// readJSON reads a key's JSON document and its revision (0, and zero for
// T, when the key is absent).
func readJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string, zero T) (T, uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return zero, 0, nil
	}
	if err != nil {
		return zero, 0, err
	}
	var v T
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return zero, 0, fmt.Errorf("%s: %w", key, err)
	}
	return v, e.Revision(), nil
}

// change reads a key's document, changes it with fn and writes it back by
// compare-and-set, again on a conflict.
func change[T any](ctx context.Context, kv jetstream.KeyValue, key string, zero func() T, fn func(*T) error) error {
	for range 100 {
		v, rev, err := readJSON(ctx, kv, key, zero())
		if err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, b)
		} else {
			_, err = kv.Update(ctx, key, b, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		return err
	}
	return errors.New("too many concurrent changes")
}

// registry is triage.Registry on a bucket: one key holds the whole
// document, small and changed rarely.
type registry struct{ s *Stores }

const registryKey = "registry"

func (r registry) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.s.timeout)
}

func (r registry) List(ctx context.Context) ([]triage.Entry, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	kv, err := r.s.bucket(ctx, knownBucket)
	if err != nil {
		return nil, fmt.Errorf("known issues: %w", err)
	}
	doc, _, err := readJSON(ctx, kv, registryKey, triage.NewRegistryDoc())
	if err != nil {
		return nil, fmt.Errorf("known issues: %w", err)
	}
	return doc.Entries, nil
}

func (r registry) Add(ctx context.Context, e triage.Entry, by string) (triage.Entry, error) {
	if err := e.Validate(); err != nil {
		return triage.Entry{}, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	kv, err := r.s.bucket(ctx, knownBucket)
	if err != nil {
		return triage.Entry{}, fmt.Errorf("known issues: %w", err)
	}
	var added triage.Entry
	err = change(ctx, kv, registryKey, triage.NewRegistryDoc, func(d *triage.RegistryDoc) (err error) {
		added, err = d.AddEntry(e, by, r.s.now())
		return err
	})
	if err != nil {
		return triage.Entry{}, fmt.Errorf("known issues: %w", err)
	}
	return added, nil
}

func (r registry) Remove(ctx context.Context, id int64, by string) (triage.Entry, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	kv, err := r.s.bucket(ctx, knownBucket)
	if err != nil {
		return triage.Entry{}, fmt.Errorf("known issues: %w", err)
	}
	var removed triage.Entry
	err = change(ctx, kv, registryKey, triage.NewRegistryDoc, func(d *triage.RegistryDoc) (err error) {
		removed, err = d.RemoveEntry(id, by, r.s.now())
		return err
	})
	return removed, err
}

func (r registry) History(ctx context.Context) ([]triage.Change, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	kv, err := r.s.bucket(ctx, knownBucket)
	if err != nil {
		return nil, fmt.Errorf("known issues: %w", err)
	}
	doc, _, err := readJSON(ctx, kv, registryKey, triage.NewRegistryDoc())
	return doc.History, err
}

// ledger is triage.Ledger on a bucket, one key per compose.
type ledger struct{ s *Stores }

// key makes a compose ID a KV key, as the workflow bucket's keys are.
func key(composeID string) string { return workflow.KeyOf(composeID) }

func (l ledger) Reruns(ctx context.Context, composeID string) ([]reports.Rerun, error) {
	if err := triage.CheckComposeID(composeID); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.s.timeout)
	defer cancel()
	kv, err := l.s.bucket(ctx, rerunsBucket)
	if err != nil {
		return nil, fmt.Errorf("re-runs of %s: %w", composeID, err)
	}
	doc, _, err := readJSON(ctx, kv, key(composeID), triage.LedgerDoc{ComposeID: composeID, Reruns: []reports.Rerun{}})
	if err != nil {
		return nil, fmt.Errorf("re-runs of %s: %w", composeID, err)
	}
	return doc.Reruns, nil
}

func (l ledger) Record(ctx context.Context, composeID string, r reports.Rerun) error {
	if err := triage.CheckComposeID(composeID); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, l.s.timeout)
	defer cancel()
	kv, err := l.s.bucket(ctx, rerunsBucket)
	if err != nil {
		return fmt.Errorf("re-runs of %s: %w", composeID, err)
	}
	zero := func() triage.LedgerDoc { return triage.LedgerDoc{ComposeID: composeID, Reruns: []reports.Rerun{}} }
	if err := change(ctx, kv, key(composeID), zero, func(d *triage.LedgerDoc) error { d.Add(r); return nil }); err != nil {
		return fmt.Errorf("re-runs of %s: %w", composeID, err)
	}
	return nil
}
