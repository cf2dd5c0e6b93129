package kvstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
)

// reportStore is reports.Store in JetStream: each version's files are
// objects "<release>/<compose>/<version>/<file>" in the reports Object
// Store bucket; the reportmeta key-value bucket holds, by compose, its
// list of versions naming the canonical one ("versions.<compose>"), the
// ledgers of mails ("mail.<compose>") and of deliveries
// ("deliveries.<compose>"), and by release its index ("index.<release>"),
// each changed by compare-and-set. A version's files are written before
// the list names it, so a reader never finds a version without its files.
type reportStore struct {
	s *Stores

	once     sync.Once
	renderer *reports.Renderer
	rerr     error
}

var _ reports.Store = (*reportStore)(nil)

func (rs *reportStore) render(r reports.Report) (reports.Rendered, error) {
	rs.once.Do(func() { rs.renderer, rs.rerr = reports.NewRenderer() })
	if rs.rerr != nil {
		return reports.Rendered{}, rs.rerr
	}
	return rs.renderer.Render(r)
}

// where validates a compose ID (canonical only: it names keys and objects)
// and returns its release.
func where(composeID string) (string, error) {
	id, err := fedfind.ParseComposeID(composeID)
	if err != nil {
		return "", fmt.Errorf("report store: %w", err)
	}
	if id.String() != composeID {
		return "", fmt.Errorf("report store: %w: compose ID %q is not in canonical form (%s)", fedfind.ErrInvalidInput, composeID, id)
	}
	rel, err := reports.ReleaseOf(composeID)
	if err != nil {
		return "", fmt.Errorf("report store: %w", err)
	}
	return rel, nil
}

func objectName(release, composeID, version, file string) string {
	return release + "/" + composeID + "/" + version + "/" + file
}

func (rs *reportStore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 3*rs.s.timeout)
}

func (rs *reportStore) Write(ctx context.Context, r reports.Report) (reports.Written, error) {
	rel, err := where(r.ComposeID)
	if err != nil {
		return reports.Written{}, err
	}
	if r.Release != rel {
		return reports.Written{}, fmt.Errorf("report store: %w: report of %s names release %q, its compose belongs to %q",
			fedfind.ErrInvalidInput, r.ComposeID, r.Release, rel)
	}
	out, err := rs.render(r)
	if err != nil {
		return reports.Written{}, err
	}
	ctx, cancel := rs.ctx(ctx)
	defer cancel()
	obj, err := rs.s.objects(ctx)
	if err != nil {
		return reports.Written{}, fmt.Errorf("report store: %w", err)
	}
	version := reports.ContentKey(r)
	// JSON last: a version whose JSON is there has its renderings too.
	for _, f := range []struct {
		name string
		data []byte
	}{{reports.FileText, out.Text}, {reports.FileHTML, out.HTML}, {reports.FileJSON, out.JSON}} {
		// Put again under the same name when the cluster lost the
		// acknowledgement (an election): the object is replaced whole.
		err := workflow.RetryStalledFrom(ctx, 5*time.Second, func(ctx context.Context) error {
			_, err := obj.PutBytes(ctx, objectName(rel, r.ComposeID, version, f.name), f.data)
			return err
		})
		if err != nil {
			return reports.Written{}, fmt.Errorf("report store: storing %s of %s: %w", f.name, r.ComposeID, err)
		}
	}
	kv, err := rs.s.bucket(ctx, reportMetaBucket)
	if err != nil {
		return reports.Written{}, fmt.Errorf("report store: %w", err)
	}
	w := reports.Written{Path: rel + "/" + r.ComposeID, Version: version}
	zero := func() reports.VersionList {
		return reports.VersionList{ComposeID: r.ComposeID, Versions: []reports.Version{}}
	}
	err = change(ctx, kv, "versions."+key(r.ComposeID), zero, func(d *reports.VersionList) error {
		var canonical *reports.Report
		if d.Canonical != "" {
			c, err := rs.readVersion(ctx, obj, rel, r.ComposeID, d.Canonical)
			if err != nil {
				return err
			}
			canonical = &c
		}
		w.Canonical, w.Kept = d.Add(r, version, rs.s.now(), canonical)
		return nil
	})
	if err != nil {
		return reports.Written{}, fmt.Errorf("report store: versions of %s: %w", r.ComposeID, err)
	}
	if w.Canonical {
		entry := reports.IndexEntry{ComposeID: r.ComposeID, PreviousComposeID: r.PreviousComposeID, GeneratedAt: r.GeneratedAt,
			Status: r.Status, Problem: r.Problem, Summary: r.Summary}
		zeroIndex := func() reports.Index {
			return reports.Index{SchemaVersion: reports.SchemaVersion, Release: rel, Reports: []reports.IndexEntry{}}
		}
		err := change(ctx, kv, "index."+key(rel), zeroIndex, func(ix *reports.Index) error {
			ix.SchemaVersion, ix.Release = reports.SchemaVersion, rel
			ix.Upsert(entry)
			return nil
		})
		if err != nil {
			return reports.Written{}, fmt.Errorf("report store: index of %s: %w", rel, err)
		}
	}
	rs.s.log.DebugContext(ctx, "stored compose check report", "compose", r.ComposeID, "version", version, "canonical", w.Canonical)
	return w, nil
}

func (rs *reportStore) readVersion(ctx context.Context, obj jetstream.ObjectStore, rel, composeID, version string) (reports.Report, error) {
	b, err := getBytes(ctx, obj, objectName(rel, composeID, version, reports.FileJSON))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return reports.Report{}, fmt.Errorf("report store: version %s of %s: %w", version, composeID, reports.ErrNotFound)
	}
	if err != nil {
		return reports.Report{}, fmt.Errorf("report store: %w", err)
	}
	r, err := reports.ParseReport(b)
	if err != nil {
		return reports.Report{}, fmt.Errorf("report store: version %s of %s: %w", version, composeID, err)
	}
	return r, nil
}

// getBytes reads an object, again when the read stalls (RetryStalled).
func getBytes(ctx context.Context, obj jetstream.ObjectStore, name string) (b []byte, err error) {
	err = workflow.RetryStalled(ctx, func(ctx context.Context) (err error) {
		b, err = obj.GetBytes(ctx, name)
		return err
	})
	return b, err
}

// versions reads a compose's list of versions (ErrNotFound without one).
func (rs *reportStore) versions(ctx context.Context, composeID string) (reports.VersionList, error) {
	kv, err := rs.s.bucket(ctx, reportMetaBucket)
	if err != nil {
		return reports.VersionList{}, fmt.Errorf("report store: %w", err)
	}
	d, rev, err := readJSON(ctx, kv, "versions."+key(composeID), reports.VersionList{})
	if err != nil {
		return d, fmt.Errorf("report store: versions of %s: %w", composeID, err)
	}
	if rev == 0 || d.Canonical == "" {
		return d, fmt.Errorf("report store: %s: %w", composeID, reports.ErrNotFound)
	}
	return d, nil
}

func (rs *reportStore) Read(ctx context.Context, composeID string) (reports.Report, error) {
	b, err := rs.ReadFile(ctx, composeID, "", reports.FileJSON)
	if err != nil {
		return reports.Report{}, err
	}
	r, err := reports.ParseReport(b)
	if err != nil {
		return reports.Report{}, fmt.Errorf("report store: %s: %w", composeID, err)
	}
	return r, nil
}

func (rs *reportStore) ReadVersion(ctx context.Context, composeID, version string) (reports.Report, error) {
	b, err := rs.ReadFile(ctx, composeID, version, reports.FileJSON)
	if err != nil {
		return reports.Report{}, err
	}
	r, err := reports.ParseReport(b)
	if err != nil {
		return reports.Report{}, fmt.Errorf("report store: %s version %s: %w", composeID, version, err)
	}
	return r, nil
}

func (rs *reportStore) ReadFile(ctx context.Context, composeID, version, name string) ([]byte, error) {
	rel, err := where(composeID)
	if err != nil {
		return nil, err
	}
	if err := reports.CheckFileName(name); err != nil {
		return nil, err
	}
	if version != "" && !reports.ValidVersion(version) {
		return nil, fmt.Errorf("report store: %w: %q is not a report version", fedfind.ErrInvalidInput, version)
	}
	ctx, cancel := rs.ctx(ctx)
	defer cancel()
	if version == "" {
		d, err := rs.versions(ctx, composeID)
		if err != nil {
			return nil, err
		}
		version = d.Canonical
	}
	obj, err := rs.s.objects(ctx)
	if err != nil {
		return nil, fmt.Errorf("report store: %w", err)
	}
	b, err := getBytes(ctx, obj, objectName(rel, composeID, version, name))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("report store: %s of %s version %s: %w", name, composeID, version, reports.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("report store: %w", err)
	}
	return b, nil
}

func (rs *reportStore) Versions(ctx context.Context, composeID string) ([]reports.Version, error) {
	if _, err := where(composeID); err != nil {
		return nil, err
	}
	ctx, cancel := rs.ctx(ctx)
	defer cancel()
	d, err := rs.versions(ctx, composeID)
	if err != nil {
		return nil, err
	}
	return d.Versions, nil
}

func (rs *reportStore) Index(ctx context.Context, release string) (reports.Index, error) {
	if !reports.ValidRelease(release) {
		return reports.Index{}, fmt.Errorf("report store: %w: %q is not a release name", fedfind.ErrInvalidInput, release)
	}
	ctx, cancel := rs.ctx(ctx)
	defer cancel()
	kv, err := rs.s.bucket(ctx, reportMetaBucket)
	if err != nil {
		return reports.Index{}, fmt.Errorf("report store: %w", err)
	}
	ix, rev, err := readJSON(ctx, kv, "index."+key(release), reports.Index{})
	if err != nil {
		return reports.Index{}, fmt.Errorf("report store: index of %s: %w", release, err)
	}
	if rev == 0 {
		return reports.Index{}, fmt.Errorf("report store: release %s: %w", release, reports.ErrNotFound)
	}
	if ix.Reports == nil {
		ix.Reports = []reports.IndexEntry{}
	}
	return ix, nil
}

func (rs *reportStore) Releases(ctx context.Context) ([]string, error) {
	ctx, cancel := rs.ctx(ctx)
	defer cancel()
	kv, err := rs.s.bucket(ctx, reportMetaBucket)
	if err != nil {
		return nil, fmt.Errorf("report store: %w", err)
	}
	var out []string
	err = workflow.RetryStalled(ctx, func(ctx context.Context) error {
		lister, err := kv.ListKeysFiltered(ctx, "index.>")
		if err != nil {
			return err
		}
		out = []string{}
		for k := range lister.Keys() {
			if rel, err := workflow.NameOfKey(strings.TrimPrefix(k, "index.")); err == nil && reports.ValidRelease(rel) {
				out = append(out, rel)
			}
		}
		// The keys end early, without an error, when ctx does.
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("report store: listing releases: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// mailLedger and deliveryLedger have the shapes of the archive's files.
type mailLedger struct {
	ComposeID string               `json:"compose_id"`
	Sent      []reports.MailRecord `json:"sent"`
}

type deliveryLedger struct {
	ComposeID  string             `json:"compose_id"`
	Deliveries []reports.Delivery `json:"deliveries"`
}

func (rs *reportStore) MailsOf(ctx context.Context, composeID string) ([]reports.MailRecord, error) {
	if _, err := where(composeID); err != nil {
		return nil, err
	}
	ctx, cancel := rs.ctx(ctx)
	defer cancel()
	kv, err := rs.s.bucket(ctx, reportMetaBucket)
	if err != nil {
		return nil, fmt.Errorf("report store: %w", err)
	}
	l, _, err := readJSON(ctx, kv, "mail."+key(composeID), mailLedger{})
	if err != nil {
		return nil, fmt.Errorf("report store: mails of %s: %w", composeID, err)
	}
	return l.Sent, nil
}

func (rs *reportStore) RecordMail(ctx context.Context, composeID string, rec reports.MailRecord) error {
	zero := func() mailLedger { return mailLedger{ComposeID: composeID, Sent: []reports.MailRecord{}} }
	return changeLedger(ctx, rs, composeID, "mail", "mails", zero, func(l *mailLedger) {
		l.ComposeID = composeID
		l.Sent = slices.DeleteFunc(l.Sent, func(m reports.MailRecord) bool { return m.MessageID == rec.MessageID })
		l.Sent = append(l.Sent, rec)
	})
}

// changeLedger changes the ledger of kind (the key's first part) of a
// compose by compare-and-set on the report metadata bucket; what names it
// in errors.
func changeLedger[L any](ctx context.Context, rs *reportStore, composeID, kind, what string, zero func() L, edit func(*L)) error {
	if _, err := where(composeID); err != nil {
		return err
	}
	ctx, cancel := rs.ctx(ctx)
	defer cancel()
	kv, err := rs.s.bucket(ctx, reportMetaBucket)
	if err != nil {
		return fmt.Errorf("report store: %w", err)
	}
	err = change(ctx, kv, kind+"."+key(composeID), zero, func(l *L) error { edit(l); return nil })
	if err != nil {
		return fmt.Errorf("report store: %s of %s: %w", what, composeID, err)
	}
	return nil
}

func (rs *reportStore) Delivered(ctx context.Context, composeID, id string) (reports.Delivery, bool, error) {
	if _, err := where(composeID); err != nil {
		return reports.Delivery{}, false, err
	}
	ctx, cancel := rs.ctx(ctx)
	defer cancel()
	kv, err := rs.s.bucket(ctx, reportMetaBucket)
	if err != nil {
		return reports.Delivery{}, false, fmt.Errorf("report store: %w", err)
	}
	l, _, err := readJSON(ctx, kv, "deliveries."+key(composeID), deliveryLedger{})
	if err != nil {
		return reports.Delivery{}, false, fmt.Errorf("report store: deliveries of %s: %w", composeID, err)
	}
	for _, d := range l.Deliveries {
		if d.ID == id {
			return d, true, nil
		}
	}
	return reports.Delivery{}, false, nil
}

func (rs *reportStore) RecordDelivery(ctx context.Context, composeID string, d reports.Delivery) error {
	if d.ID == "" {
		return errors.New("report store: a delivery without an id")
	}
	zero := func() deliveryLedger { return deliveryLedger{ComposeID: composeID, Deliveries: []reports.Delivery{}} }
	return changeLedger(ctx, rs, composeID, "deliveries", "deliveries", zero, func(l *deliveryLedger) {
		l.ComposeID = composeID
		l.Deliveries = slices.DeleteFunc(l.Deliveries, func(x reports.Delivery) bool { return x.ID == d.ID })
		l.Deliveries = append(l.Deliveries, d)
	})
}
