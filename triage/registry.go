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

type registryDoc struct {
	NextID  int64    `json:"next_id"`
	Entries []Entry  `json:"entries"`
	History []Change `json:"history"`
}

func (f FileRegistry) now() time.Time {
	if f.Now != nil {
		return f.Now().UTC()
	}
	return time.Now().UTC()
}

func (f FileRegistry) read() (registryDoc, error) {
	doc := registryDoc{NextID: 1, Entries: []Entry{}, History: []Change{}}
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
func (f FileRegistry) change(ctx context.Context, fn func(*registryDoc) error) error {
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
	err := f.change(ctx, func(doc *registryDoc) error {
		e.ID, e.CreatedAt, e.CreatedBy = doc.NextID, f.now(), by
		doc.NextID++
		doc.Entries = append(doc.Entries, e)
		doc.History = append(doc.History, Change{At: e.CreatedAt, By: by, Action: "add", Entry: e})
		return nil
	})
	return e, err
}

// Remove implements Registry.
func (f FileRegistry) Remove(ctx context.Context, id int64, by string) (Entry, error) {
	var removed Entry
	err := f.change(ctx, func(doc *registryDoc) error {
		i := slices.IndexFunc(doc.Entries, func(e Entry) bool { return e.ID == id })
		if i < 0 {
			return fmt.Errorf("known issue %d: %w", id, ErrNotFound)
		}
		removed = doc.Entries[i]
		doc.Entries = slices.Delete(doc.Entries, i, i+1)
		doc.History = append(doc.History, Change{At: f.now(), By: by, Action: "remove", Entry: removed})
		return nil
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
