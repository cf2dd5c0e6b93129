package fedfind

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/composeci/composeci/internal/httpclient"
)

// Package diffs compare what two composes ship as source packages, read
// from each compose's rpms.json: which were added, removed, upgraded and
// downgraded, in each variant and arch (a "tree") and rolled up over the
// whole compose. Source packages, because one build is one change whatever
// number of binary packages it makes; versions in RPM's order (CompareEVR).

// SourceOptions chooses the trees a package diff reads. Empty lists read
// every variant and arch; names match without regard to case.
type SourceOptions struct {
	Variants []string
	Arches   []string
}

func (o SourceOptions) keeps(variant, arch string) bool {
	in := func(list []string, v string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if strings.EqualFold(x, v) {
				return true
			}
		}
		return false
	}
	return in(o.Variants, variant) && in(o.Arches, arch)
}

func (o SourceOptions) String() string {
	var parts []string
	if len(o.Variants) > 0 {
		parts = append(parts, "variant "+strings.Join(o.Variants, " or "))
	}
	if len(o.Arches) > 0 {
		parts = append(parts, "arch "+strings.Join(o.Arches, " or "))
	}
	if len(parts) == 0 {
		return "any tree"
	}
	return strings.Join(parts, " and ")
}

// SourceTree is the source packages of one variant on one arch.
type SourceTree struct {
	Variant string `json:"variant"`
	Arch    string `json:"arch"`
	// Packages sorted by name, one per name: should a tree list two
	// versions of one package, the higher in RPM's order.
	Packages []NEVR `json:"packages"`
}

// SourcePackages is what a compose ships as source packages, tree by tree.
type SourcePackages struct {
	Compose ComposeMeta `json:"compose"`
	// Trees read, sorted by variant and arch.
	Trees []SourceTree `json:"trees"`
	// Skipped names the trees ("Server/x86_64") SourceOptions left out, so
	// that a caller can say which there are when none matched.
	Skipped []string `json:"skipped,omitempty"`
}

// ReadSourcePackages reads the source packages of each tree from rpms.json
// (see StreamRPMs for what is checked). It is the fast path of a package
// diff: it reads no package entry, only the source NEVRAs above them, and
// keeps each distinct source package once however many trees list it, so
// its memory follows the number of source packages, not the file's size.
func ReadSourcePackages(r io.Reader, file string, opts SourceOptions) (*SourcePackages, error) {
	w := newRPMsWalker(r, file)
	type tree struct {
		variant, arch string
		pkgs          []*NEVR
	}
	var trees []*tree
	index := map[[2]string]*tree{}
	var skipped []string
	var cur *tree
	interned := map[string]*NEVR{}
	w.keep = func(variant, arch string) bool {
		if !opts.keeps(variant, arch) {
			if name := variant + "/" + arch; !slices.Contains(skipped, name) {
				skipped = append(skipped, name)
			}
			return false
		}
		key := [2]string{variant, arch}
		if cur = index[key]; cur == nil {
			cur = &tree{variant: variant, arch: arch}
			index[key] = cur
			trees = append(trees, cur)
		}
		return true
	}
	w.group = func(variant, arch string, srpm []byte) error {
		// Look the name up before the next read reuses its bytes.
		n, ok := interned[string(srpm)]
		if !ok {
			s := string(srpm)
			nevra, err := ParseNEVRA(s)
			if err != nil {
				return metaErr(file, "%s: source package %q is not a NEVRA", where("payload.rpms", variant, arch), s)
			}
			nevr := nevra.NEVR()
			n = &nevr
			interned[s] = n
		}
		cur.pkgs = append(cur.pkgs, n)
		switch k := w.dec.PeekKind(); k {
		case '{', 0: // 0: an error, which the skip reports
			return w.fail(w.dec.SkipValue())
		default:
			return metaErr(file, "%s: want a JSON object, got %s", where("payload.rpms", variant, arch, n.String()), kindName(k))
		}
	}
	if err := w.walk(); err != nil {
		return nil, err
	}
	sp := &SourcePackages{Compose: w.compose, Trees: make([]SourceTree, 0, len(trees)), Skipped: skipped}
	for _, t := range trees {
		pkgs := make([]NEVR, len(t.pkgs))
		for i, p := range t.pkgs {
			pkgs[i] = *p
		}
		sp.Trees = append(sp.Trees, SourceTree{Variant: t.variant, Arch: t.arch, Packages: highest(pkgs)})
	}
	slices.SortFunc(sp.Trees, func(a, b SourceTree) int {
		return cmp.Or(strings.Compare(a.Variant, b.Variant), strings.Compare(a.Arch, b.Arch))
	})
	slices.Sort(sp.Skipped)
	return sp, nil
}

// highest sorts packages by name and keeps the highest version of each
// name, in place.
func highest(pkgs []NEVR) []NEVR {
	slices.SortFunc(pkgs, func(a, b NEVR) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), -CompareEVR(a.EVR, b.EVR))
	})
	return slices.CompactFunc(pkgs, func(a, b NEVR) bool { return a.Name == b.Name })
}

// RolledUp is the compose's source packages over all the trees read: each
// name once, at the highest version any tree has.
func (sp *SourcePackages) RolledUp() []NEVR {
	var all []NEVR
	for _, t := range sp.Trees {
		all = append(all, t.Packages...)
	}
	return highest(all)
}

// PackageRef is a source package added or removed.
type PackageRef struct {
	Name string `json:"name"`
	NEVR NEVR   `json:"nevr"`
}

// PackageUpdate is a source package whose version changed.
type PackageUpdate struct {
	Name string `json:"name"`
	From EVR    `json:"from"`
	To   EVR    `json:"to"`
}

// SourceChanges are the source package changes of one tree or of a whole
// compose. Every list is sorted by name and, in JSON, an array even when
// empty.
type SourceChanges struct {
	Added      []PackageRef    `json:"added"`
	Removed    []PackageRef    `json:"removed"`
	Upgraded   []PackageUpdate `json:"upgraded"`
	Downgraded []PackageUpdate `json:"downgraded"`
	// Unchanged counts the packages in both at the same version (by
	// RPM's order: "0:1.0" and "1.0" are the same).
	Unchanged int `json:"unchanged"`
}

// Empty reports whether nothing changed.
func (c SourceChanges) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && len(c.Upgraded) == 0 && len(c.Downgraded) == 0
}

// TreeChanges are the changes in one variant on one arch.
type TreeChanges struct {
	Variant string `json:"variant"`
	Arch    string `json:"arch"`
	SourceChanges
}

// PackageChanges is the package diff of two composes: the changes rolled up
// over the whole compose (a package counts once, at the highest version any
// of its trees has), and the trees that changed. A package that moved from
// one variant to another changes two trees and not the roll-up; one
// upgraded on x86_64 only is upgraded in the roll-up and in that tree.
type PackageChanges struct {
	Old string `json:"old"`
	New string `json:"new"`
	SourceChanges
	// Trees that changed, sorted by variant and arch; a tree in one
	// compose only has all its packages added or removed.
	Trees []TreeChanges `json:"trees"`
}

// Empty reports whether no tree changed (and so neither did the roll-up).
func (d PackageChanges) Empty() bool { return d.SourceChanges.Empty() && len(d.Trees) == 0 }

// PackageDiff compares the source packages of an old and a new compose.
func PackageDiff(old, new *SourcePackages) PackageChanges {
	d := PackageChanges{
		Old:           old.Compose.ID,
		New:           new.Compose.ID,
		SourceChanges: diffSorted(old.RolledUp(), new.RolledUp()),
		Trees:         []TreeChanges{},
	}
	type pair struct{ old, new []NEVR }
	trees := map[[2]string]*pair{}
	get := func(t SourceTree) *pair {
		k := [2]string{t.Variant, t.Arch}
		if trees[k] == nil {
			trees[k] = &pair{}
		}
		return trees[k]
	}
	for _, t := range old.Trees {
		get(t).old = t.Packages
	}
	for _, t := range new.Trees {
		get(t).new = t.Packages
	}
	for k, p := range trees {
		if c := diffSorted(p.old, p.new); !c.Empty() {
			d.Trees = append(d.Trees, TreeChanges{Variant: k[0], Arch: k[1], SourceChanges: c})
		}
	}
	slices.SortFunc(d.Trees, func(a, b TreeChanges) int {
		return cmp.Or(strings.Compare(a.Variant, b.Variant), strings.Compare(a.Arch, b.Arch))
	})
	return d
}

// diffSorted compares two package lists sorted by name, one per name.
func diffSorted(old, new []NEVR) SourceChanges {
	c := SourceChanges{Added: []PackageRef{}, Removed: []PackageRef{}, Upgraded: []PackageUpdate{}, Downgraded: []PackageUpdate{}}
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && old[i].Name < new[j].Name):
			c.Removed = append(c.Removed, PackageRef{Name: old[i].Name, NEVR: old[i]})
			i++
		case i == len(old) || new[j].Name < old[i].Name:
			c.Added = append(c.Added, PackageRef{Name: new[j].Name, NEVR: new[j]})
			j++
		default:
			u := PackageUpdate{Name: new[j].Name, From: old[i].EVR, To: new[j].EVR}
			switch CompareEVR(u.From, u.To) {
			case -1:
				c.Upgraded = append(c.Upgraded, u)
			case 1:
				c.Downgraded = append(c.Downgraded, u)
			default:
				c.Unchanged++
			}
			i, j = i+1, j+1
		}
	}
	return c
}

// SourcePackages reads the source packages of a compose from its rpms.json,
// streamed from the tree. The metadata archive is asked too, but keeps no
// rpms.json in Fedora: the error for a compose whose tree is gone says so
// and wraps ErrComposeNotFound.
func (c *Client) SourcePackages(ctx context.Context, cm *Compose, opts SourceOptions) (*SourcePackages, error) {
	sp, _, err := fetchMetadata(ctx, c, cm, "rpms.json", func(r io.Reader, u string) (*SourcePackages, error) {
		return ReadSourcePackages(r, u, opts)
	})
	if errors.Is(err, httpclient.ErrNotFound) {
		st, serr := c.Status(ctx, cm)
		switch {
		case errors.Is(serr, ErrComposeNotFound):
			if c.archived(ctx, cm, "composeinfo.json", func(io.Reader, string) error { return nil }) == nil {
				return nil, fmt.Errorf("%w: the tree of %s has been garbage-collected from %s, and the metadata archive keeps its composeinfo.json and images.json but no rpms.json: its packages cannot be read (%w)", ErrComposeNotFound, cm.ID, c.root, err)
			}
			return nil, fmt.Errorf("%w: %s is not in %s (%w)", ErrComposeNotFound, cm.ID, c.root, err)
		case serr == nil:
			return nil, fmt.Errorf("%s has no rpms.json (STATUS %s): Pungi writes it once it has gathered the packages: %w", cm.ID, st, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if sp.Compose.ID != cm.ID.String() {
		return nil, fmt.Errorf("%w: rpms.json of %s describes %q", ErrMismatch, cm.ID, sp.Compose.ID)
	}
	return sp, nil
}

// PackageDiff reads the source packages of two composes, both at once (each
// read is CPU-bound on a large rpms.json), and compares them. When options
// narrow the trees and neither compose has one that matches, it is an
// ErrInvalidInput error naming the trees there are, not an empty diff.
func (c *Client) PackageDiff(ctx context.Context, old, new *Compose, opts SourceOptions) (PackageChanges, error) {
	var o, n *SourcePackages
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		o, err = c.SourcePackages(gctx, old, opts)
		return err
	})
	g.Go(func() (err error) {
		n, err = c.SourcePackages(gctx, new, opts)
		return err
	})
	if err := g.Wait(); err != nil {
		return PackageChanges{}, err
	}
	if len(o.Trees) == 0 && len(n.Trees) == 0 && (len(opts.Variants) > 0 || len(opts.Arches) > 0) {
		there := "they list no packages at all"
		if all := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(o.Skipped), n.Skipped...)))); len(all) > 0 {
			there = "they have " + strings.Join(all, ", ")
		}
		return PackageChanges{}, fmt.Errorf("%w: neither %s nor %s has packages of %s (%s)", ErrInvalidInput, old.ID, new.ID, opts, there)
	}
	return PackageDiff(o, n), nil
}
