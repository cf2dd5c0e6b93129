package fedfind

import (
	"cmp"
	"maps"
	"slices"
)

// DiffOptions sets what counts as a changed image.
type DiffOptions struct {
	// SizeThreshold is the relative size change (0.1 = 10%) beyond which an
	// image present in both composes counts as changed. Zero means any size
	// change counts; a negative value ignores size.
	SizeThreshold float64
	// Checksums makes a changed checksum (of an algorithm both composes
	// list) count as a change. Off by default: every nightly rebuilds every
	// image, so checksums always differ between two nightlies.
	Checksums bool
}

// DefaultDiffOptions flags images whose size moved by more than 10%.
var DefaultDiffOptions = DiffOptions{SizeThreshold: 0.10}

// DiffEntry is one image in a diff.
type DiffEntry struct {
	Identity   string `json:"identity"`
	Arch       string `json:"arch"`
	Subvariant string `json:"subvariant"`
	Type       string `json:"type"`
	Format     string `json:"format"`
	Disc       int    `json:"disc_number,omitempty"`
	Path       string `json:"path"`
	Size       int64  `json:"size"`
}

// ChangedEntry is an image present in both composes that changed.
type ChangedEntry struct {
	DiffEntry
	OldPath  string   `json:"old_path"`
	OldSize  int64    `json:"old_size"`
	SizeDiff float64  `json:"size_change"` // relative, (new-old)/old
	Reasons  []string `json:"reasons"`
}

// ImageDiff is the difference between the images of compose A (older) and
// compose B (newer). Added holds images only in B, Removed those only in A.
// Every list is sorted by arch, identity and disc, so two diffs compare
// cleanly.
type ImageDiff struct {
	Added   []DiffEntry    `json:"added"`
	Removed []DiffEntry    `json:"removed"`
	Changed []ChangedEntry `json:"changed"`
}

// Empty reports whether the diff found nothing.
func (d ImageDiff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

func entryOf(im Image) DiffEntry {
	k := im.Key()
	return DiffEntry{Identity: im.Identity, Arch: im.Arch, Subvariant: im.Subvariant, Type: im.Type,
		Format: im.Format, Disc: k.Disc, Path: im.Path, Size: im.Size}
}

// indexImages maps each ImageKey to its image. Source media listed under
// several arches (productmd 1.2) carry arch "src" and collapse to one.
func indexImages(images []Image) map[ImageKey]Image {
	m := make(map[ImageKey]Image, len(images))
	for _, im := range images {
		m[im.Key()] = im
	}
	return m
}

// Diff compares the images of a (older) and b (newer).
func Diff(a, b []Image, opts DiffOptions) ImageDiff {
	ai, bi := indexImages(a), indexImages(b)
	d := ImageDiff{Added: []DiffEntry{}, Removed: []DiffEntry{}, Changed: []ChangedEntry{}}
	for _, k := range sortedKeys(bi) {
		nb := bi[k]
		na, ok := ai[k]
		if !ok {
			d.Added = append(d.Added, entryOf(nb))
			continue
		}
		var reasons []string
		rel := 0.0
		if na.Size > 0 {
			rel = float64(nb.Size-na.Size) / float64(na.Size)
		}
		if opts.SizeThreshold >= 0 && na.Size != nb.Size && abs(rel) > opts.SizeThreshold {
			reasons = append(reasons, "size")
		}
		if opts.Checksums && checksumsDiffer(na.Checksums, nb.Checksums) {
			reasons = append(reasons, "checksum")
		}
		if len(reasons) > 0 {
			d.Changed = append(d.Changed, ChangedEntry{DiffEntry: entryOf(nb), OldPath: na.Path,
				OldSize: na.Size, SizeDiff: rel, Reasons: reasons})
		}
	}
	for _, k := range sortedKeys(ai) {
		if _, ok := bi[k]; !ok {
			d.Removed = append(d.Removed, entryOf(ai[k]))
		}
	}
	return d
}

func sortedKeys(m map[ImageKey]Image) []ImageKey {
	return slices.SortedFunc(maps.Keys(m), compareKeys)
}

func compareKeys(x, y ImageKey) int {
	return cmp.Or(cmp.Compare(x.Arch, y.Arch), cmp.Compare(x.Identity, y.Identity), cmp.Compare(x.Disc, y.Disc))
}

func checksumsDiffer(a, b map[string]string) bool {
	for alg, va := range a {
		if vb, ok := b[alg]; ok && va != vb {
			return true
		}
	}
	return false
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
