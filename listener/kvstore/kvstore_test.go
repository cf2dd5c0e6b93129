package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/internal/testenv"
	"github.com/composeci/composeci/listener/kvstore"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/reports/reportstest"
	"github.com/composeci/composeci/triage"
	"github.com/composeci/composeci/triage/triagetest"
)

// open makes stores of a prefix of the test's own on the external NATS,
// deleted when the test ends.
func open(t *testing.T) *kvstore.Stores {
	t.Helper()
	url := testenv.NATSURL(t)
	prefix := fmt.Sprintf("K%d", time.Now().UnixNano()%1e12)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := kvstore.Open(ctx, kvstore.Options{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		for _, b := range []string{prefix + "_known", prefix + "_reruns", prefix + "_reportmeta"} {
			if err := js.DeleteKeyValue(context.Background(), b); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
				t.Errorf("deleting %s: %v", b, err)
			}
		}
		if err := js.DeleteObjectStore(context.Background(), prefix+"_reports"); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("deleting the object store: %v", err)
		}
	})
	return s
}

func TestJetStreamBackends(t *testing.T) {
	t.Run("registry", func(t *testing.T) { triagetest.Registry(t, open(t).Registry) })
	t.Run("ledger", func(t *testing.T) { triagetest.Ledger(t, open(t).Ledger) })
	t.Run("reports", func(t *testing.T) { reportstest.Store(t, open(t).Reports) })
}

// TestRegistrySharedAcrossProcesses: what one connection (one host)
// registers or records, another connection on the same prefix sees at once.
func TestRegistrySharedAcrossProcesses(t *testing.T) {
	url := testenv.NATSURL(t)
	a := open(t)
	ctx := context.Background()
	prefix := a.Prefix()
	b, err := kvstore.Open(ctx, kvstore.Options{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e, err := a.Registry.Add(ctx, triage.Entry{Test: "install_default", Reason: "firmware"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Registry.List(ctx)
	if err != nil || len(l) != 1 || l[0].ID != e.ID || l[0].CreatedBy != "alice" {
		t.Fatalf("the other connection lists %+v %v", l, err)
	}
	if _, err := b.Registry.Remove(ctx, e.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if l, _ := a.Registry.List(ctx); len(l) != 0 {
		t.Errorf("removed on one, still listed on the other: %+v", l)
	}
	const id = "Fedora-Rawhide-20261122.n.0"
	if err := a.Ledger.Record(ctx, id, reports.Rerun{By: "alice", Scope: triage.ScopeJob, JobID: 3, RerunJobID: 4}); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Ledger.Reruns(ctx, id); err != nil || len(r) != 1 || r[0].RerunJobID != 4 {
		t.Errorf("the other connection's ledger: %+v %v", r, err)
	}
}

func TestOpenRefusesABadPrefix(t *testing.T) {
	for _, p := range []string{"", "a.b", "a b", "x*", strings.Repeat("a", 33)} {
		if _, err := kvstore.Open(context.Background(), kvstore.Options{URL: "nats://127.0.0.1:1", Prefix: p}); err == nil || !strings.Contains(err.Error(), "prefix") {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
}
