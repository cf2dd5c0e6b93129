// Package reportstest is the contract every report store passes — the
// archive in a directory and the JetStream store alike: one suite, run
// against each.
package reportstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
)

// Reports returns the example compose's report as a complete check, a
// check without openQA, and a check whose openQA results are pending.
func Reports(at time.Time) (complete, noOpenQA, pending reports.Report) {
	in := checkstest.Example()
	complete = reports.Build(checks.Run(in), reports.Meta{Status: "FINISHED", GeneratedAt: at})
	bare := in
	bare.Jobs, bare.Previous = nil, nil
	noOpenQA = reports.Build(checks.Run(bare), reports.Meta{Status: "FINISHED", GeneratedAt: at.Add(time.Minute), OpenQALeftOut: true})
	waiting := in
	waiting.Jobs = append([]openqa.Job(nil), in.Jobs...)
	for i := range waiting.Jobs {
		waiting.Jobs[i].State, waiting.Jobs[i].Result = openqa.StateRunning, "none"
	}
	pending = reports.Build(checks.Run(waiting), reports.Meta{Status: "FINISHED", GeneratedAt: at.Add(2 * time.Minute)})
	return complete, noOpenQA, pending
}

// Store checks a Store that starts empty.
func Store(t *testing.T, s reports.Store) {
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	complete, noOpenQA, pending := Reports(at)
	id := complete.ComposeID
	if pending.Summary.ResultsComplete || !complete.Summary.ResultsComplete || !noOpenQA.OpenQA.LeftOut {
		t.Fatalf("fixtures: complete %v, pending %v, left out %v", complete.Summary.ResultsComplete, pending.Summary.ResultsComplete, noOpenQA.OpenQA.LeftOut)
	}

	if _, err := s.Read(ctx, id); !errors.Is(err, reports.ErrNotFound) {
		t.Fatalf("reading from an empty store: %v", err)
	}
	if rels, err := s.Releases(ctx); err != nil || len(rels) != 0 {
		t.Fatalf("releases of an empty store: %v %v", rels, err)
	}

	w, err := s.Write(ctx, complete)
	if err != nil || !w.Canonical || w.Version != reports.ContentKey(complete) || w.Path != "rawhide/"+id {
		t.Fatalf("writing the first report: %+v %v", w, err)
	}
	// A check that knows less is kept as a version and replaces nothing.
	for _, less := range []struct {
		r    reports.Report
		says string
	}{{noOpenQA, "without openQA"}, {pending, "pending"}} {
		w, err := s.Write(ctx, less.r)
		if err != nil || w.Canonical || !strings.Contains(w.Kept, less.says) {
			t.Errorf("writing a report %s: %+v %v", less.says, w, err)
		}
		got, err := s.ReadVersion(ctx, id, w.Version)
		if err != nil || got.GeneratedAt != less.r.GeneratedAt {
			t.Errorf("reading the version %s back: %v %v", less.says, got.GeneratedAt, err)
		}
	}
	got, err := s.Read(ctx, id)
	if err != nil || reports.ContentKey(got) != reports.ContentKey(complete) || got.Summary.Jobs == 0 {
		t.Fatalf("the canonical report after less knowing writes: %v, %d jobs", err, got.Summary.Jobs)
	}
	vs, err := s.Versions(ctx, id)
	if err != nil || len(vs) != 3 {
		t.Fatalf("versions %+v %v", vs, err)
	}
	canon := 0
	for _, v := range vs {
		if v.Canonical {
			canon++
			if v.Version != reports.ContentKey(complete) || v.Knowledge != 2 {
				t.Errorf("the canonical version %+v", v)
			}
		}
	}
	if canon != 1 {
		t.Errorf("%d canonical versions", canon)
	}
	for _, name := range []string{reports.FileJSON, reports.FileText, reports.FileHTML} {
		b, err := s.ReadFile(ctx, id, "", name)
		if err != nil || len(b) == 0 {
			t.Errorf("ReadFile %s: %d bytes, %v", name, len(b), err)
		}
	}
	if b, err := s.ReadFile(ctx, id, reports.ContentKey(noOpenQA), reports.FileText); err != nil || !strings.Contains(string(b), "left out") {
		t.Errorf("the text of the version without openQA: %v\n%s", err, b)
	}

	// A later complete check replaces it; the same findings again are the
	// same version.
	later := complete
	later.GeneratedAt = at.Add(time.Hour)
	later.Status = "FINISHED_INCOMPLETE"
	if w, err := s.Write(ctx, later); err != nil || !w.Canonical {
		t.Fatalf("a newer complete report: %+v %v", w, err)
	}
	if w, err := s.Write(ctx, later); err != nil || !w.Canonical || w.Version != reports.ContentKey(later) {
		t.Fatalf("the same report again: %+v %v", w, err)
	}
	if vs, _ := s.Versions(ctx, id); len(vs) != 4 {
		t.Errorf("%d versions after writing one twice, want 4", len(vs))
	}
	if got, _ := s.Read(ctx, id); got.Status != "FINISHED_INCOMPLETE" {
		t.Errorf("canonical status %q", got.Status)
	}

	ix, err := s.Index(ctx, "rawhide")
	if err != nil || len(ix.Reports) != 1 || ix.Reports[0].ComposeID != id || ix.Reports[0].Status != "FINISHED_INCOMPLETE" {
		t.Errorf("index %+v %v", ix, err)
	}
	if rels, err := s.Releases(ctx); err != nil || len(rels) != 1 || rels[0] != "rawhide" {
		t.Errorf("releases %v %v", rels, err)
	}
	if _, err := s.Index(ctx, "44"); !errors.Is(err, reports.ErrNotFound) {
		t.Errorf("the index of a release without reports: %v", err)
	}

	// Bad input is refused before it names a file or a key.
	for _, bad := range []func() error{
		func() error { _, err := s.Read(ctx, "../../etc/passwd"); return err },
		func() error { _, err := s.ReadFile(ctx, id, "", "mail.json"); return err },
		func() error { _, err := s.ReadFile(ctx, id, "../x", reports.FileJSON); return err },
		func() error { _, err := s.Index(ctx, "../x"); return err },
		func() error {
			return s.RecordMail(ctx, "Fedora-Rawhide-20261122.nightly.0", reports.MailRecord{MessageID: "x"})
		},
	} {
		if err := bad(); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("bad input: %v", err)
		}
	}
	if _, err := s.ReadVersion(ctx, id, strings.Repeat("0", 32)); !errors.Is(err, reports.ErrNotFound) {
		t.Errorf("a version that is not there: %v", err)
	}

	// The ledgers.
	if m, err := s.MailsOf(ctx, id); err != nil || len(m) != 0 {
		t.Errorf("mails of a fresh store: %v %v", m, err)
	}
	rec := reports.MailRecord{MessageID: "a.b@composeci", Recipients: []string{"qa@example.org"}, SentAt: at, Version: "v1"}
	if err := s.RecordMail(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	rec2 := rec
	rec2.Version = "v2"
	if err := s.RecordMail(ctx, id, rec2); err != nil { // the same Message-ID replaces
		t.Fatal(err)
	}
	if m, err := s.MailsOf(ctx, id); err != nil || len(m) != 1 || m[0].Version != "v2" {
		t.Errorf("mails %+v %v", m, err)
	}
	d := reports.Delivery{ID: reports.DeliveryID("webhook", "https://hook.example.org/", id, "v1"), Channel: "webhook", Endpoint: "https://hook.example.org/", Version: "v1", DeliveredAt: at}
	if _, ok, err := s.Delivered(ctx, id, d.ID); err != nil || ok {
		t.Errorf("a delivery before it was made: %v %v", ok, err)
	}
	if err := s.RecordDelivery(ctx, id, d); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.Delivered(ctx, id, d.ID); err != nil || !ok || got.Endpoint != d.Endpoint {
		t.Errorf("the delivery: %+v %v %v", got, ok, err)
	}

	// Writers of one compose take turns: every version is kept.
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			r := complete
			r.Status = fmt.Sprintf("FINISHED_%d", i)
			r.GeneratedAt = at.Add(time.Duration(2+i) * time.Hour)
			if _, err := s.Write(ctx, r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if vs, err := s.Versions(ctx, id); err != nil || len(vs) != 10 {
		t.Errorf("%d versions after 6 concurrent writes (want 10): %v", len(vs), err)
	}
}
