// Package triage is what composeci does with failures beyond classing them:
// a registry of known issues (a failure with a bug filed is reported as
// known, with its reason, and raises no alarm), scoped re-runs of openQA
// jobs with an audit trail, and the confirmation of new failures by a
// re-run. Each store has an interface and a file backend under the data
// directory; a deployment on an external NATS cluster keeps them in
// JetStream instead (listener/kvstore), so every host sees the same.
package triage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/datadir"
)

// ErrNotFound: no such entry in the registry.
var ErrNotFound = errors.New("no such known issue")

// Entry is one known issue: a failure of Test (and of Flavor, Arch and
// failed openQA Module where given) is this issue until Expires.
type Entry struct {
	ID     int64  `json:"id"`
	Test   string `json:"test"`
	Flavor string `json:"flavor,omitempty"`
	Arch   string `json:"arch,omitempty"`
	Module string `json:"module,omitempty"`
	Reason string `json:"reason"`
	Bug    string `json:"bug,omitempty"`
	// Expires is when the entry stops matching; zero: never.
	Expires   time.Time `json:"expires,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// Issue is the entry as the checks match it.
func (e Entry) Issue() checks.KnownIssue {
	return checks.KnownIssue{ID: e.ID, Test: e.Test, Flavor: e.Flavor, Arch: e.Arch, Module: e.Module,
		Reason: e.Reason, Bug: e.Bug, Expires: e.Expires}
}

// Expired reports whether the entry no longer matches at now.
func (e Entry) Expired(now time.Time) bool { return e.Issue().Expired(now) }

// Validate checks an entry before it is added: a test to match, a reason
// for people, a bug that is an http(s) URL, no control characters.
func (e Entry) Validate() error {
	if strings.TrimSpace(e.Test) == "" {
		return fmt.Errorf("%w: a known issue needs the test it matches", fedfind.ErrInvalidInput)
	}
	if strings.TrimSpace(e.Reason) == "" {
		return fmt.Errorf("%w: a known issue needs a reason, for the people who read the report", fedfind.ErrInvalidInput)
	}
	for name, v := range map[string]string{"test": e.Test, "flavor": e.Flavor, "arch": e.Arch, "module": e.Module, "reason": e.Reason, "bug": e.Bug} {
		if len(v) > 1024 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("%w: %s: at most 1024 characters, no control characters", fedfind.ErrInvalidInput, name)
		}
	}
	if e.Bug != "" && !strings.HasPrefix(e.Bug, "https://") && !strings.HasPrefix(e.Bug, "http://") {
		return fmt.Errorf("%w: bug %q: want an http(s) URL", fedfind.ErrInvalidInput, e.Bug)
	}
	return nil
}

// Change is one change of the registry, for its audit trail.
type Change struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Action string    `json:"action"` // "add" or "remove"
	Entry  Entry     `json:"entry"`
}

// Registry holds the known issues of a deployment, with the history of
// every change (who, when, what).
type Registry interface {
	// List returns the entries, by id, expired ones included.
	List(ctx context.Context) ([]Entry, error)
	// Add stores e under a new id and returns it as stored.
	Add(ctx context.Context, e Entry, by string) (Entry, error)
	// Remove deletes an entry; ErrNotFound when there is none.
	Remove(ctx context.Context, id int64, by string) (Entry, error)
	// History returns every change, oldest first.
	History(ctx context.Context) ([]Change, error)
}

// Issues returns the registry's entries as the checks match them.
func Issues(ctx context.Context, r Registry) ([]checks.KnownIssue, error) {
	if r == nil {
		return nil, nil
	}
	entries, err := r.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("known issues: %w", err)
	}
	out := make([]checks.KnownIssue, len(entries))
	for i, e := range entries {
		out[i] = e.Issue()
	}
	return out, nil
}

// RegistryFile is the file registry's file in a data directory.
const RegistryFile = "known-issues.json"

// FileRegistry keeps the registry in <Dir>/known-issues.json: every change
// takes an exclusive lock and rewrites the file atomically, so a listener
// and the CLI on one host share it.
type FileRegistry struct {
	Dir string
	Now func() time.Time
}

// RegistryDoc is a whole registry as its backends store it: the entries,
// the next id, and the history of changes.
type RegistryDoc struct {
	NextID  int64    `json:"next_id"`
	Entries []Entry  `json:"entries"`
	History []Change `json:"history"`
}

// NewRegistryDoc is an empty registry.
func NewRegistryDoc() RegistryDoc {
	return RegistryDoc{NextID: 1, Entries: []Entry{}, History: []Change{}}
}

// AddEntry stores e in the document under a new id and records the change.
func (d *RegistryDoc) AddEntry(e Entry, by string, now time.Time) (Entry, error) {
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	if d.NextID < 1 {
		d.NextID = 1
	}
	e.ID, e.CreatedAt, e.CreatedBy = d.NextID, now.UTC(), by
	d.NextID++
	d.Entries = append(d.Entries, e)
	d.History = append(d.History, Change{At: e.CreatedAt, By: by, Action: "add", Entry: e})
	return e, nil
}

// RemoveEntry deletes an entry from the document and records the change.
func (d *RegistryDoc) RemoveEntry(id int64, by string, now time.Time) (Entry, error) {
	i := slices.IndexFunc(d.Entries, func(e Entry) bool { return e.ID == id })
	if i < 0 {
		return Entry{}, fmt.Errorf("known issue %d: %w", id, ErrNotFound)
	}
	removed := d.Entries[i]
	d.Entries = slices.Delete(d.Entries, i, i+1)
	d.History = append(d.History, Change{At: now.UTC(), By: by, Action: "remove", Entry: removed})
	return removed, nil
}

func (f FileRegistry) now() time.Time {
	if f.Now != nil {
		return f.Now().UTC()
	}
	return time.Now().UTC()
}

func (f FileRegistry) read() (RegistryDoc, error) {
	doc := NewRegistryDoc()
	b, err := os.ReadFile(filepath.Join(f.Dir, RegistryFile))
	if errors.Is(err, os.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return doc, fmt.Errorf("known issues: %w", err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, fmt.Errorf("known issues: %s: %w", RegistryFile, err)
	}
	return doc, nil
}

// change reads, changes and writes the file under the lock.
func (f FileRegistry) change(ctx context.Context, fn func(*RegistryDoc) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lock, err := datadir.Wait(ctx, f.Dir, RegistryFile+".lock", "composeci known issues")
	if err != nil {
		return fmt.Errorf("known issues: %w", err)
	}
	defer func() { _ = lock.Release() }()
	doc, err := f.read()
	if err != nil {
		return err
	}
	if err := fn(&doc); err != nil {
		return err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return datadir.WriteAtomic(filepath.Join(f.Dir, RegistryFile), append(b, '\n'))
}

// List implements Registry.
func (f FileRegistry) List(ctx context.Context) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc, err := f.read()
	return doc.Entries, err
}

// Add implements Registry.
func (f FileRegistry) Add(ctx context.Context, e Entry, by string) (Entry, error) {
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	var added Entry
	err := f.change(ctx, func(doc *RegistryDoc) (err error) {
		added, err = doc.AddEntry(e, by, f.now())
		return err
	})
	return added, err
}

// Remove implements Registry.
func (f FileRegistry) Remove(ctx context.Context, id int64, by string) (Entry, error) {
	var removed Entry
	err := f.change(ctx, func(doc *RegistryDoc) (err error) {
		removed, err = doc.RemoveEntry(id, by, f.now())
		return err
	})
	return removed, err
}

// History implements Registry.
func (f FileRegistry) History(ctx context.Context) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc, err := f.read()
	return doc.History, err
}

// ParseExpiry reads when a known issue expires: a date (2026-12-31, the
// end of that day UTC), an RFC 3339 time, or a duration from now (720h,
// or in days: 30d); "" never expires.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil {
			if n <= 0 || n > 36500 {
				return time.Time{}, fmt.Errorf("%w: expiry %q: want 1 to 36500 days", fedfind.ErrInvalidInput, s)
			}
			return now.Add(time.Duration(n) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%w: expiry %q: want a positive duration", fedfind.ErrInvalidInput, s)
		}
		return now.Add(d).UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Add(24 * time.Hour).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%w: expiry %q: want a date (2026-12-31), a time (RFC 3339) or a duration (30d, 720h)", fedfind.ErrInvalidInput, s)
}
