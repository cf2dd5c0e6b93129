package reports

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
)

// Archive stores reports on disk:
//
//	<Dir>/<release>/<compose-id>/report.json, report.txt, report.html
//	<Dir>/<release>/index.json
//
// Dir is usually <data>/reports (see DataArchive). Every file is written
// atomically (a temporary file in the same directory, fsync, rename, fsync
// of the directory), so a reader sees the old file or the new one, never
// half of one. A compose ID names a directory only after
// fedfind.ParseComposeID accepted it, and every file operation goes through
// an os.Root on Dir, so nothing an event carries can write outside the
// archive, not even through a symlink planted inside it.
type Archive struct {
	Dir string
	// Renderer renders the text and HTML files; nil parses the templates on
	// each Write.
	Renderer *Renderer
	// Logger receives one debug line per report written; nil discards.
	Logger *slog.Logger
}

// DataArchive returns the archive of a composeci data directory,
// <dataDir>/reports.
func DataArchive(dataDir string) Archive {
	return Archive{Dir: filepath.Join(dataDir, "reports")}
}

// The files of one report, and the index of a release.
const (
	FileJSON  = "report.json"
	FileText  = "report.txt"
	FileHTML  = "report.html"
	FileIndex = "index.json"
	lockFile  = ".index.lock"
	// FileVersions, beside a compose's canonical report, lists its
	// versions; each is kept in versions/<version>/.
	FileVersions = "versions.json"
	versionsDir  = "versions"
	reportLock   = ".report.lock"
)

// ErrNotFound is wrapped when the archive has no such report or release.
var ErrNotFound = errors.New("not in the report archive")

// releaseName reports whether rel has the shape of a release directory
// name: at most 128 lower-case letters, digits, and . _ + - inside
// (^[a-z0-9][a-z0-9._+-]{0,127}$). It is checked by hand because that
// regexp, compiled at start-up, unrolled its {0,127} into 127 copies for
// every command (docs/performance.md, "Start-up").
func releaseName(rel string) bool {
	if rel == "" || len(rel) > 128 {
		return false
	}
	for i := 0; i < len(rel); i++ {
		c := rel[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '+' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// ReleaseOf returns the directory name of the release a compose belongs to,
// which groups its reports in the archive: "rawhide", "eln", "44" (Branched
// nightlies and production composes of 44 alike), "44-updates",
// "44-updates-testing", "cloud-44", "iot-rawhide", and "other-<prefix>" for
// composes of no known stream. The compose ID is validated first; an
// invalid one wraps fedfind.ErrInvalidInput.
func ReleaseOf(composeID string) (string, error) {
	id, err := fedfind.ParseComposeID(composeID)
	if err != nil {
		return "", err
	}
	return releaseOf(id)
}

func releaseOf(id fedfind.ComposeID) (string, error) {
	st := fedfind.StreamOf(id)
	var rel string
	switch st.Kind {
	case fedfind.StreamRawhide, fedfind.StreamELN:
		rel = string(st.Kind)
	case fedfind.StreamBranched, fedfind.StreamProduction:
		rel = st.Version
	case fedfind.StreamUpdates, fedfind.StreamUpdatesTesting:
		rel = st.Version + "-" + string(st.Kind)
	case fedfind.StreamCloud, fedfind.StreamContainer, fedfind.StreamIoT:
		rel = string(st.Kind) + "-" + st.Version
	default:
		rel = "other-" + id.Prefix
	}
	rel = strings.ToLower(rel)
	if !validRelease(rel) {
		return "", fmt.Errorf("%w: compose %s gives no usable release name (%q)", fedfind.ErrInvalidInput, id, rel)
	}
	return rel, nil
}

// ValidRelease reports whether rel can name a release directory of the
// archive ("rawhide", "44", "44-updates", ...).
func ValidRelease(rel string) bool { return validRelease(rel) }

func validRelease(rel string) bool {
	return releaseName(rel) && !strings.Contains(rel, "..")
}

// Index lists the reports of one release, oldest compose first in
// productmd's compose order.
type Index struct {
	SchemaVersion int          `json:"schema_version"`
	Release       string       `json:"release"`
	Reports       []IndexEntry `json:"reports"`
}

// IndexEntry is one report in an Index.
type IndexEntry struct {
	ComposeID         string    `json:"compose_id"`
	PreviousComposeID string    `json:"previous_compose_id"`
	GeneratedAt       time.Time `json:"generated_at"`
	Status            string    `json:"status"`
	Problem           bool      `json:"problem"`
	Summary           Summary   `json:"summary"`
}

func entryOf(r Report) IndexEntry {
	return IndexEntry{ComposeID: r.ComposeID, PreviousComposeID: r.PreviousComposeID, GeneratedAt: r.GeneratedAt,
		Status: r.Status, Problem: r.Problem, Summary: r.Summary}
}

// Written says what Write stored.
type Written struct {
	// Dir and the file names are the canonical report's files on disk (a
	// store that is not a directory leaves them empty).
	Dir                     string
	JSON, Text, HTML, Index string
	// Path is the report's directory relative to the archive root, with
	// slashes ("rawhide/Fedora-Rawhide-20261122.n.0"): where the web
	// serves it under /reports/, and what a workflow records.
	Path string
	// Version is the version written (the report's ContentKey).
	Version string
	// Canonical is true when it is now the compose's canonical report;
	// otherwise Kept says why the canonical one was kept.
	Canonical bool
	Kept      string
}

// location validates a compose ID and returns it parsed with its release
// and its directory relative to the archive root. The relative path is
// checked to stay inside the root lexically too: validation and os.Root
// each suffice, and neither is trusted alone.
func (a Archive) location(composeID string) (fedfind.ComposeID, string, string, error) {
	id, err := fedfind.ParseComposeID(composeID)
	if err != nil {
		return fedfind.ComposeID{}, "", "", fmt.Errorf("archive: %w", err)
	}
	if id.String() != composeID {
		// ".nightly" and ".test" spellings: one compose, one directory.
		return fedfind.ComposeID{}, "", "", fmt.Errorf("archive: %w: compose ID %q is not in canonical form (%s)", fedfind.ErrInvalidInput, composeID, id)
	}
	rel, err := releaseOf(id)
	if err != nil {
		return fedfind.ComposeID{}, "", "", fmt.Errorf("archive: %w", err)
	}
	dir := path.Join(rel, composeID)
	if err := inside(a.Dir, dir); err != nil {
		return fedfind.ComposeID{}, "", "", err
	}
	return id, rel, dir, nil
}

// inside checks that rel, joined to root, stays inside root.
func inside(root, rel string) error {
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return fmt.Errorf("archive: %w: %q leaves the archive", fedfind.ErrInvalidInput, rel)
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	full := filepath.Join(absRoot, filepath.FromSlash(rel))
	r, err := filepath.Rel(absRoot, full)
	if err != nil || r == "." || !filepath.IsLocal(r) {
		return fmt.Errorf("archive: %w: %q leaves the archive", fedfind.ErrInvalidInput, rel)
	}
	return nil
}

func (a Archive) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// openRoot opens the archive root, creating it if asked.
func (a Archive) openRoot(create bool) (*os.Root, error) {
	if a.Dir == "" {
		return nil, errors.New("archive: no directory configured")
	}
	if create {
		if err := os.MkdirAll(a.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
	}
	root, err := os.OpenRoot(a.Dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("archive %s: %w", a.Dir, ErrNotFound)
		}
		return nil, fmt.Errorf("archive: %w", err)
	}
	return root, nil
}

// Write stores r (JSON, text and HTML) as a version of its compose's
// report, under versions/<version>/, and — unless it knows less than the
// canonical report (KnowsLess) — as the canonical report beside them,
// recorded in its release's index. r.Release must be the compose's
// release: a report is never filed under another one. Writers of one
// compose take turns under a lock.
func (a Archive) Write(ctx context.Context, r Report) (Written, error) {
	_, rel, dir, err := a.location(r.ComposeID)
	if err != nil {
		return Written{}, err
	}
	if r.Release != rel {
		return Written{}, fmt.Errorf("archive: %w: report of %s names release %q, its compose belongs to %q",
			fedfind.ErrInvalidInput, r.ComposeID, r.Release, rel)
	}
	rd := a.Renderer
	if rd == nil {
		if rd, err = NewRenderer(); err != nil {
			return Written{}, err
		}
	}
	out, err := rd.Render(r)
	if err != nil {
		return Written{}, err
	}
	version := ContentKey(r)
	root, err := a.openRoot(true)
	if err != nil {
		return Written{}, err
	}
	defer root.Close()
	vdir := path.Join(dir, versionsDir, version)
	if err := root.MkdirAll(vdir, 0o755); err != nil {
		return Written{}, fmt.Errorf("archive: %w", err)
	}
	unlock, err := lockExclusive(ctx, root, path.Join(dir, reportLock))
	if err != nil {
		return Written{}, fmt.Errorf("archive: locking the report of %s: %w", r.ComposeID, err)
	}
	defer unlock()
	files := func(dir string) error {
		// Text and HTML first, JSON last: a reader that finds the JSON
		// finds the renderings of the same report (or of an older one
		// being replaced).
		for _, f := range []struct {
			name string
			data []byte
		}{{FileText, out.Text}, {FileHTML, out.HTML}, {FileJSON, out.JSON}} {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := writeAtomic(root, path.Join(dir, f.name), f.data); err != nil {
				return err
			}
		}
		return nil
	}
	if err := files(vdir); err != nil {
		return Written{}, err
	}
	doc, err := a.readVersions(root, dir, r.ComposeID)
	if err != nil {
		return Written{}, err
	}
	var canonical *Report
	if c, err := readReport(root, path.Join(dir, FileJSON)); err == nil {
		canonical = &c
		if doc.Canonical == "" { // an archive from before versions were kept
			doc.Canonical = ContentKey(c)
		}
	} else if !errors.Is(err, ErrNotFound) {
		a.logger().WarnContext(ctx, "the canonical report is unreadable; replacing it", "compose", r.ComposeID, "err", err)
	}
	w := Written{Path: dir, Version: version}
	w.Canonical, w.Kept = doc.Add(r, version, time.Now(), canonical)
	if w.Canonical {
		if err := files(dir); err != nil {
			return Written{}, err
		}
		if _, err := a.updateIndex(ctx, root, rel, func(ix *Index) { ix.upsert(entryOf(r)) }); err != nil {
			return Written{}, err
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return Written{}, err
	}
	if err := writeAtomic(root, path.Join(dir, FileVersions), append(b, '\n')); err != nil {
		return Written{}, err
	}
	full := filepath.Join(a.Dir, filepath.FromSlash(dir))
	w.Dir, w.JSON, w.Text, w.HTML, w.Index = full, filepath.Join(full, FileJSON), filepath.Join(full, FileText),
		filepath.Join(full, FileHTML), filepath.Join(a.Dir, rel, FileIndex)
	a.logger().DebugContext(ctx, "archived compose check report", "compose", r.ComposeID, "dir", full, "version", version, "canonical", w.Canonical)
	return w, nil
}

// readVersions reads a compose's versions.json (empty when absent).
func (a Archive) readVersions(root *os.Root, dir, composeID string) (VersionList, error) {
	doc := VersionList{ComposeID: composeID, Versions: []Version{}}
	b, err := root.ReadFile(path.Join(dir, FileVersions))
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return doc, fmt.Errorf("archive: %w", err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, fmt.Errorf("archive: %s/%s: %w", dir, FileVersions, err)
	}
	return doc, nil
}

// Versions implements Store.
func (a Archive) Versions(ctx context.Context, composeID string) ([]Version, error) {
	_, _, dir, err := a.location(composeID)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	root, err := a.openRoot(false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	doc, err := a.readVersions(root, dir, composeID)
	if err != nil {
		return nil, err
	}
	if len(doc.Versions) == 0 {
		// A report from before versions were kept is its only version.
		c, err := readReport(root, path.Join(dir, FileJSON))
		if err != nil {
			return nil, err
		}
		doc.Add(c, ContentKey(c), c.GeneratedAt, nil)
	}
	return doc.Versions, nil
}

// ReadVersion implements Store.
func (a Archive) ReadVersion(ctx context.Context, composeID, version string) (Report, error) {
	b, err := a.ReadFile(ctx, composeID, version, FileJSON)
	if err != nil {
		return Report{}, err
	}
	r, err := ParseReport(b)
	if err != nil {
		return Report{}, fmt.Errorf("archive: %s version %s: %w", composeID, version, err)
	}
	return r, nil
}

// ReadFile implements Store.
func (a Archive) ReadFile(ctx context.Context, composeID, version, name string) ([]byte, error) {
	_, _, dir, err := a.location(composeID)
	if err != nil {
		return nil, err
	}
	if err := CheckFileName(name); err != nil {
		return nil, err
	}
	if version != "" {
		if !ValidVersion(version) {
			return nil, fmt.Errorf("archive: %w: %q is not a report version", fedfind.ErrInvalidInput, version)
		}
		dir = path.Join(dir, versionsDir, version)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	root, err := a.openRoot(false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	b, err := root.ReadFile(path.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		if version != "" && name != "" {
			// A report from before versions were kept: its one version
			// is the canonical file.
			if c, cerr := readReport(root, path.Join(path.Dir(path.Dir(dir)), FileJSON)); cerr == nil && ContentKey(c) == version {
				return root.ReadFile(path.Join(path.Dir(path.Dir(dir)), name))
			}
		}
		return nil, fmt.Errorf("archive: %s of %s: %w", name, composeID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return b, nil
}

// CheckFileName accepts the files of a report.
func CheckFileName(name string) error {
	switch name {
	case FileJSON, FileText, FileHTML:
		return nil
	}
	return fmt.Errorf("archive: %w: %q is not a report file", fedfind.ErrInvalidInput, name)
}

// ValidVersion accepts a ContentKey: 32 lower-case hex digits.
func ValidVersion(v string) bool {
	if len(v) != 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Read returns the archived report of a compose.
func (a Archive) Read(ctx context.Context, composeID string) (Report, error) {
	_, _, dir, err := a.location(composeID)
	if err != nil {
		return Report{}, err
	}
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	root, err := a.openRoot(false)
	if err != nil {
		return Report{}, err
	}
	defer root.Close()
	return readReport(root, path.Join(dir, FileJSON))
}

func readReport(root *os.Root, name string) (Report, error) {
	b, err := root.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return Report{}, fmt.Errorf("archive: %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Report{}, fmt.Errorf("archive: %w", err)
	}
	r, err := ParseReport(b)
	if err != nil {
		return Report{}, fmt.Errorf("archive: %s: %w", name, err)
	}
	return r, nil
}

// Index returns the index of a release. A missing or unreadable index is
// rebuilt from the reports on disk (and rewritten), so a crash or a hand
// edit never loses the listing.
func (a Archive) Index(ctx context.Context, release string) (Index, error) {
	if !validRelease(release) {
		return Index{}, fmt.Errorf("archive: %w: %q is not a release name", fedfind.ErrInvalidInput, release)
	}
	root, err := a.openRoot(false)
	if err != nil {
		return Index{}, err
	}
	defer root.Close()
	if _, err := root.Stat(release); errors.Is(err, fs.ErrNotExist) {
		return Index{}, fmt.Errorf("archive: release %s: %w", release, ErrNotFound)
	}
	ix, err := readIndex(root, release)
	if err == nil {
		return ix, nil
	}
	a.logger().WarnContext(ctx, "rebuilding report index", "release", release, "err", err)
	return a.Reindex(ctx, release)
}

// Reindex rebuilds a release's index from the report.json files under it.
func (a Archive) Reindex(ctx context.Context, release string) (Index, error) {
	if !validRelease(release) {
		return Index{}, fmt.Errorf("archive: %w: %q is not a release name", fedfind.ErrInvalidInput, release)
	}
	root, err := a.openRoot(false)
	if err != nil {
		return Index{}, err
	}
	defer root.Close()
	return a.updateIndex(ctx, root, release, func(ix *Index) {
		ix.Reports = nil
		des, err := fs.ReadDir(root.FS(), release)
		if err != nil {
			return
		}
		for _, de := range des {
			if !de.IsDir() {
				continue
			}
			if _, rel, _, err := a.location(de.Name()); err != nil || rel != release {
				continue
			}
			r, err := readReport(root, path.Join(release, de.Name(), FileJSON))
			if err != nil {
				a.logger().WarnContext(ctx, "skipping unreadable report", "release", release, "compose", de.Name(), "err", err)
				continue
			}
			ix.upsert(entryOf(r))
		}
	})
}

// Releases lists the releases that have reports, sorted.
func (a Archive) Releases(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	root, err := a.openRoot(false)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return []string{}, nil
		}
		return nil, err
	}
	defer root.Close()
	des, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	out := []string{}
	for _, de := range des {
		if de.IsDir() && validRelease(de.Name()) {
			out = append(out, de.Name())
		}
	}
	return out, nil
}

func readIndex(root *os.Root, release string) (Index, error) {
	b, err := root.ReadFile(path.Join(release, FileIndex))
	if err != nil {
		return Index{}, err
	}
	var ix Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return Index{}, fmt.Errorf("%s: %w", FileIndex, err)
	}
	if ix.SchemaVersion < 1 || ix.SchemaVersion > SchemaVersion || ix.Release != release {
		return Index{}, fmt.Errorf("%s: schema %d, release %q: %w", FileIndex, ix.SchemaVersion, ix.Release, ErrSchemaVersion)
	}
	if ix.Reports == nil {
		ix.Reports = []IndexEntry{}
	}
	return ix, nil
}

// updateIndex applies change to a release's index under an exclusive lock
// (processes sharing a data directory take turns) and writes it back
// atomically. An unreadable index starts empty; change sees and fixes that.
func (a Archive) updateIndex(ctx context.Context, root *os.Root, release string, change func(*Index)) (Index, error) {
	if err := root.MkdirAll(release, 0o755); err != nil {
		return Index{}, fmt.Errorf("archive: %w", err)
	}
	unlock, err := lockExclusive(ctx, root, path.Join(release, lockFile))
	if err != nil {
		return Index{}, fmt.Errorf("archive: locking index of %s: %w", release, err)
	}
	defer unlock()
	ix, err := readIndex(root, release)
	if err != nil {
		ix = Index{}
	}
	ix.SchemaVersion, ix.Release = SchemaVersion, release
	change(&ix)
	ix.sort()
	if ix.Reports == nil {
		ix.Reports = []IndexEntry{}
	}
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return Index{}, fmt.Errorf("archive: encoding index: %w", err)
	}
	if err := writeAtomic(root, path.Join(release, FileIndex), append(b, '\n')); err != nil {
		return Index{}, err
	}
	return ix, nil
}

// Upsert adds a report's entry, or replaces the entry of its compose, and
// keeps the index in compose order.
func (ix *Index) Upsert(e IndexEntry) {
	ix.upsert(e)
	ix.sort()
}

func (ix *Index) upsert(e IndexEntry) {
	for i := range ix.Reports {
		if ix.Reports[i].ComposeID == e.ComposeID {
			ix.Reports[i] = e
			return
		}
	}
	ix.Reports = append(ix.Reports, e)
}

// sort orders the entries by productmd's compose order; entries whose ID
// does not parse (a hand-edited index) go last, by name.
func (ix *Index) sort() {
	slices.SortFunc(ix.Reports, func(x, y IndexEntry) int {
		a, errA := fedfind.ParseComposeID(x.ComposeID)
		b, errB := fedfind.ParseComposeID(y.ComposeID)
		switch {
		case errA == nil && errB == nil:
			return cmp.Or(a.Compare(b), cmp.Compare(x.ComposeID, y.ComposeID))
		case errA == nil:
			return -1
		case errB == nil:
			return 1
		}
		return cmp.Compare(x.ComposeID, y.ComposeID)
	})
}

// writeAtomic writes data to name inside root: a temporary file in the same
// directory, fsync, rename over name, fsync of the directory so the rename
// itself survives a crash.
func writeAtomic(root *os.Root, name string, data []byte) (err error) {
	dir, base := path.Split(name)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, "."+base+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer func() {
		if err != nil {
			_ = root.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("archive: writing %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("archive: syncing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("archive: closing %s: %w", name, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if dir == "" {
		dir = "."
	}
	d, err := root.Open(dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("archive: syncing directory %s: %w", dir, err)
	}
	return nil
}
