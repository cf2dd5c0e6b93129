// Package fakefedora is one simulated Fedora for composeci's tests and demo:
// a compose mirror, a Koji hub, an openQA server, each speaking the real wire
// formats over real HTTP. It writes its own data (productmd JSON, XML-RPC,
// openQA JSON) by hand rather than through composeci's types, so a test of a
// client against it is a test of the client against the format.
package fakefedora

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ImageSpec describes one image of a simulated compose.
type ImageSpec struct {
	Variant    string // Server, Everything, Workstation, ...
	Subvariant string // Server, KDE, Cloud_Base, ...
	Type       string // dvd, boot, live, qcow2, raw-xz, ...
	Format     string // iso, qcow2, raw.xz, ...
	Arch       string
	// Size in bytes; zero picks a stable size from the identity.
	Size int64
	// Path relative to the compose/ directory; empty builds one the way
	// Pungi names files.
	Path string
}

// ComposeSpec describes a simulated compose.
type ComposeSpec struct {
	ID string
	// Status is the STATUS word; empty means the compose directory exists
	// but Pungi has not written STATUS yet.
	Status string
	// Label such as "Beta-1.2"; empty for nightlies.
	Label string
	// Images; nil means StandardImages for the compose.
	Images []ImageSpec
	// RPMs is the number of packages rpms.json lists (default 20) when
	// Packages is nil.
	RPMs int
	// Packages are the source packages rpms.json lists, with what they
	// build (see PackageSpec and Packages); nil lists RPMs made-up ones.
	// Two composes that differ here differ in a package diff.
	Packages []PackageSpec
	// NoRPMs: the compose has no rpms.json (404), as older composes and
	// composes that gather no packages.
	NoRPMs bool
	// NoImages: the compose has no images.json (404), in the tree or the
	// metadata archive, though it finished: its metadata was lost, or a
	// mirror has not synced it yet.
	NoImages bool
	// FormatVersion of the productmd files; default "1.2".
	FormatVersion string
	// Variants beyond those the images name (e.g. "Everything" for the
	// generic tree); default adds Everything.
	Variants []string
	// NoComposeIDFile: the compose directory has no COMPOSE_ID file (404),
	// as a copy of a tree made without it; its composeinfo.json still
	// names it.
	NoComposeIDFile bool
	// GarbageCollected: the compose's tree is gone (every path under it is
	// 404 and it is not listed), as happens a week or so after it finished;
	// its metadata is still in the metadata archive.
	GarbageCollected bool
}

type mirrorCompose struct {
	spec    ComposeSpec
	dir     string // stream directory under the root
	version string // release version (Rawhide, 44)
	short   string
	relType string
	date    string
	typ     string
	respin  int
}

// Mirror is a simulated compose tree, served under /compose like
// kojipkgs.fedoraproject.org/compose: <root>/<stream dir>/<ID>/STATUS,
// COMPOSE_ID, compose/metadata/*.json, latest-* links (directories that
// serve everything of the newest finished compose of their stream, as
// Pungi's symlinks do) and HTML directory listings (Apache autoindex style); and the metadata archive,
// <root>/metadata-archive/<YYYY>/<ID>/{composeinfo,images}.json of every
// finished compose, and series files <root>/metadata-archive/series/
// <short>-<version lower-case> listing "<ID> [label]" per line, oldest first
// (production composes only for Fedora-<N>, whose nightlies have no series).
type Mirror struct {
	mu        sync.Mutex
	composes  map[string]*mirrorCompose
	latest    map[string]map[string]string // dir -> link name -> compose ID
	noListing bool
	// failures are the statuses of the next requests; retryAfter the
	// Retry-After sent with a 429 or 503 of them.
	failures   []int
	retryAfter string
	srv        *httptest.Server
	requests   atomic.Int64
	byKind     sync.Map // string -> *atomic.Int64
	delay      delay
	random     faultSwitch
}

// NewMirror returns an empty mirror; add composes with AddCompose and serve
// it with Start or Handler.
func NewMirror() *Mirror {
	return &Mirror{composes: map[string]*mirrorCompose{}, latest: map[string]map[string]string{}}
}

// Start serves the mirror on 127.0.0.1 and returns the compose root URL
// (".../compose"). Close stops it.
func (m *Mirror) Start() string {
	m.srv = httptest.NewServer(m)
	return m.Root()
}

// Root returns the compose root URL of a started mirror.
func (m *Mirror) Root() string { return m.srv.URL + "/compose" }

// Close stops a started mirror.
func (m *Mirror) Close() {
	if m.srv != nil {
		m.srv.Close()
	}
}

// SetListing turns the directory listings on (the default) or off (then a
// stream directory answers 403, as Apache does without Indexes).
func (m *Mirror) SetListing(on bool) {
	m.mu.Lock()
	m.noListing = !on
	m.mu.Unlock()
}

// FailHTTP makes the next n requests fail with the HTTP status code (e.g.
// 503, as a mirror overloaded or in maintenance answers), whatever they
// ask for; the requests are counted as "failed".
func (m *Mirror) FailHTTP(n, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		m.failures = append(m.failures, status)
	}
}

// SetRetryAfter sets the Retry-After header sent with the 429 and 503
// answers of FailHTTP ("0": ask again at once); "" sends none.
func (m *Mirror) SetRetryAfter(v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retryAfter = v
}

// SetLatency delays every answer by d, as a distant mirror would.
func (m *Mirror) SetLatency(d time.Duration) { m.delay.set(d) }

// SetGate holds every request at g until the test releases it (nil: no
// gate); see Gate.
func (m *Mirror) SetGate(g *Gate) { m.delay.setGate(g) }

// Requests returns how many requests the mirror has answered.
func (m *Mirror) Requests() int64 { return m.requests.Load() }

// RequestsOf returns how many requests of one kind the mirror answered:
// "listing", "STATUS", "COMPOSE_ID", "composeinfo.json", "images.json",
// "rpms.json", "archive", "failed" (by FailHTTP), "other".
func (m *Mirror) RequestsOf(kind string) int64 {
	if v, ok := m.byKind.Load(kind); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (m *Mirror) count(kind string) {
	m.requests.Add(1)
	v, _ := m.byKind.LoadOrStore(kind, &atomic.Int64{})
	v.(*atomic.Int64).Add(1)
}

// The compose ID patterns, compiled on first use, not at start-up: the
// fakes are linked into composeci for the demo (docs/conventions.md).
var (
	reFakeID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(.+)-(\d{8})(?:\.(n|t|ci|d))?\.(\d+)$`) })
	reRelNum = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Fedora-(\d+)$`) })
	reUpd    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Fedora-(\d+)-(updates|updates-testing)$`) })
	reEd     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Fedora-(Cloud|Container|IoT)-(\w+)$`) })
)

// place works out where Pungi would publish a compose: the stream
// directory, release short name, version and type.
func place(id string) (*mirrorCompose, error) {
	m := reFakeID().FindStringSubmatch(id)
	if m == nil {
		return nil, fmt.Errorf("fakefedora: %q is not a compose ID", id)
	}
	mc := &mirrorCompose{date: m[2], relType: "ga"}
	mc.respin, _ = strconv.Atoi(m[4])
	mc.typ = map[string]string{"": "production", "n": "nightly", "t": "test", "ci": "ci", "d": "development"}[m[3]]
	prefix := m[1]
	switch {
	case prefix == "Fedora-Rawhide":
		mc.dir, mc.short, mc.version = "rawhide", "Fedora", "Rawhide"
	case prefix == "Fedora-eln":
		mc.dir, mc.short, mc.version = "eln", "Fedora", "eln"
	case reRelNum().MatchString(prefix):
		mc.short, mc.version = "Fedora", reRelNum().FindStringSubmatch(prefix)[1]
		mc.dir = mc.version
		if mc.typ == "nightly" {
			mc.dir = "branched"
		}
	case reUpd().MatchString(prefix):
		u := reUpd().FindStringSubmatch(prefix)
		mc.dir, mc.short, mc.version, mc.relType = "updates", "Fedora", u[1], u[2]
	case reEd().MatchString(prefix):
		e := reEd().FindStringSubmatch(prefix)
		mc.dir, mc.short, mc.version = strings.ToLower(e[1]), "Fedora-"+e[1], e[2]
	default:
		return nil, fmt.Errorf("fakefedora: no stream directory for %q", id)
	}
	return mc, nil
}

// latestLinkName is Pungi's latest-* link name for a compose:
// latest-<release short>-<release version>, whatever the release type, so
// updates and updates-testing composes of a release move one link.
func (mc *mirrorCompose) latestLinkName() string {
	return "latest-" + mc.short + "-" + mc.version
}

// AddCompose adds (or replaces) a compose. A FINISHED or
// FINISHED_INCOMPLETE compose moves its stream's latest-* link, as Pungi
// does.
func (m *Mirror) AddCompose(spec ComposeSpec) error {
	mc, err := place(spec.ID)
	if err != nil {
		return err
	}
	if spec.Images == nil {
		spec.Images = StandardImages(spec.ID)
	}
	if spec.RPMs == 0 {
		spec.RPMs = 20
	}
	if spec.FormatVersion == "" {
		spec.FormatVersion = "1.2"
	}
	mc.spec = spec
	m.mu.Lock()
	defer m.mu.Unlock()
	m.composes[spec.ID] = mc
	m.updateLatest(mc)
	return nil
}

// MustAddCompose is AddCompose for fixed scenarios; it panics on error.
func (m *Mirror) MustAddCompose(spec ComposeSpec) {
	if err := m.AddCompose(spec); err != nil {
		panic(err)
	}
}

func (m *Mirror) updateLatest(mc *mirrorCompose) {
	if mc.spec.Status != "FINISHED" && mc.spec.Status != "FINISHED_INCOMPLETE" {
		return
	}
	if m.latest[mc.dir] == nil {
		m.latest[mc.dir] = map[string]string{}
	}
	m.latest[mc.dir][mc.latestLinkName()] = mc.spec.ID
}

// SetStatus changes a compose's STATUS ("" removes it).
func (m *Mirror) SetStatus(id, status string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.composes[id]
	if !ok {
		return fmt.Errorf("fakefedora: no compose %s", id)
	}
	mc.spec.Status = status
	m.updateLatest(mc)
	return nil
}

// RemoveImages drops the images of a compose that match subvariant, type and
// arch (empty matches any).
func (m *Mirror) RemoveImages(id, subvariant, typ, arch string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.composes[id]
	if !ok {
		return fmt.Errorf("fakefedora: no compose %s", id)
	}
	kept := mc.spec.Images[:0:0]
	for _, im := range mc.spec.Images {
		if (subvariant == "" || im.Subvariant == subvariant) && (typ == "" || im.Type == typ) && (arch == "" || im.Arch == arch) {
			continue
		}
		kept = append(kept, im)
	}
	mc.spec.Images = kept
	return nil
}

// SetRandomFaults makes a fraction of the requests fail at random from now
// on (see RandomFaultOptions); P 0 turns it off.
func (m *Mirror) SetRandomFaults(opts RandomFaultOptions) { m.random.set("mirror", opts) }

// RandomFaultCounts returns how many requests each kind of random fault
// hit.
func (m *Mirror) RandomFaultCounts() map[FaultKind]int { return m.random.counts() }

// ServeHTTP serves the tree, through the random faults if set.
func (m *Mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	withRandomFaults(m.random.get, http.HandlerFunc(m.serve)).ServeHTTP(w, r)
}

func (m *Mirror) serve(w http.ResponseWriter, r *http.Request) {
	if !m.delay.wait(r, "mirror") {
		return // the client gave up
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		m.count("other")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/compose/")
	if !ok {
		m.count("other")
		http.NotFound(w, r)
		return
	}
	segs := strings.Split(p, "/")
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.failures) > 0 {
		status := m.failures[0]
		m.failures = m.failures[1:]
		m.count("failed")
		if m.retryAfter != "" && (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) {
			w.Header().Set("Retry-After", m.retryAfter)
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	if segs[0] == "metadata-archive" {
		m.count("archive")
		m.serveArchive(w, r, segs[1:])
		return
	}
	// <dir>/ : the stream directory listing.
	if len(segs) == 2 && segs[1] == "" {
		m.count("listing")
		m.serveListing(w, segs[0])
		return
	}
	if len(segs) < 3 {
		m.count("other")
		http.NotFound(w, r)
		return
	}
	dir, name, rest := segs[0], segs[1], strings.Join(segs[2:], "/")
	if target, ok := m.latest[dir][name]; ok {
		name = target // a latest-* symlink
	}
	mc, ok := m.composes[name]
	if !ok || mc.dir != dir || mc.spec.GarbageCollected {
		m.count(kindOf(rest))
		http.NotFound(w, r)
		return
	}
	m.count(kindOf(rest))
	switch rest {
	case "STATUS":
		if mc.spec.Status == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, mc.spec.Status+"\n")
	case "COMPOSE_ID":
		if mc.spec.NoComposeIDFile {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, mc.spec.ID) // Pungi writes no newline
	case "compose/metadata/composeinfo.json", "compose/metadata/images.json":
		if !mc.spec.finished() {
			// Pungi writes these at the very end.
			http.NotFound(w, r)
			return
		}
		if rest == "compose/metadata/images.json" && mc.spec.NoImages {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if rest == "compose/metadata/composeinfo.json" {
			writeProductmd(w, mc.composeInfo())
		} else {
			writeProductmd(w, mc.images())
		}
	case "compose/metadata/rpms.json":
		if mc.spec.NoRPMs {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if mc.spec.Packages != nil {
			WriteRPMsOf(w, mc.spec.ID, mc.spec.FormatVersion, mc.spec.Packages)
		} else {
			WriteRPMs(w, mc.spec.ID, mc.spec.FormatVersion, mc.spec.RPMs)
		}
	default:
		http.NotFound(w, r)
	}
}

// finished reports whether Pungi got as far as writing the final metadata,
// which it does just before FINISHED or FINISHED_INCOMPLETE.
func (s ComposeSpec) finished() bool {
	return s.Status == "FINISHED" || s.Status == "FINISHED_INCOMPLETE"
}

func kindOf(rest string) string {
	switch rest {
	case "STATUS", "COMPOSE_ID":
		return rest
	}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 && strings.HasPrefix(rest, "compose/metadata/") {
		return rest[i+1:]
	}
	return "other"
}

func (m *Mirror) serveListing(w http.ResponseWriter, dir string) {
	if m.noListing {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	var names []string
	for id, mc := range m.composes {
		if mc.dir == dir && !mc.spec.GarbageCollected {
			names = append(names, id)
		}
	}
	for link := range m.latest[dir] {
		names = append(names, link)
	}
	if len(names) == 0 {
		http.NotFound(w, nil)
		return
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	fmt.Fprintf(w, "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n <head>\n  <title>Index of /compose/%s</title>\n </head>\n <body>\n<h1>Index of /compose/%s</h1>\n<pre><a href=\"?C=N;O=D\">Name</a> <a href=\"?C=M;O=A\">Last modified</a>\n<hr><a href=\"/compose/\">Parent Directory</a>\n", html.EscapeString(dir), html.EscapeString(dir))
	for _, n := range names {
		fmt.Fprintf(w, "<a href=\"%s/\">%s/</a>  2026-11-22 05:12    -\n", url.PathEscape(n), html.EscapeString(n))
	}
	io.WriteString(w, "<hr></pre>\n</body></html>\n")
}

// serveArchive serves <root>/metadata-archive/<YYYY>/<ID>/<file> and
// <root>/metadata-archive/series/<name>.
func (m *Mirror) serveArchive(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 2 && segs[0] == "series":
		var ids []string
		for id, mc := range m.composes {
			if mc.short+"-"+strings.ToLower(mc.version) == segs[1] && mc.relType == "ga" && (mc.typ == "production" || mc.short != "Fedora") {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			http.NotFound(w, r)
			return
		}
		sort.Slice(ids, func(i, j int) bool { return m.composes[ids[i]].before(m.composes[ids[j]]) })
		w.Header().Set("Content-Type", "text/plain")
		for _, id := range ids {
			if l := m.composes[id].spec.Label; l != "" {
				fmt.Fprintf(w, "%s %s\n", id, l)
			} else {
				fmt.Fprintln(w, id)
			}
		}
	case len(segs) == 3:
		mc, ok := m.composes[segs[1]]
		if !ok || mc.date[:4] != segs[0] || !mc.spec.finished() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch segs[2] {
		case "composeinfo.json":
			writeProductmd(w, mc.composeInfo())
		case "images.json":
			if mc.spec.NoImages {
				http.NotFound(w, r)
				return
			}
			writeProductmd(w, mc.images())
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

// before orders composes of one series by date, then respin.
func (mc *mirrorCompose) before(o *mirrorCompose) bool {
	if mc.date != o.date {
		return mc.date < o.date
	}
	return mc.respin < o.respin
}

func writeProductmd(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "    ") // productmd: sorted keys, 4-space indent
	w.Write(b)
	io.WriteString(w, "\n")
}

func (mc *mirrorCompose) composeMeta() map[string]any {
	c := map[string]any{"id": mc.spec.ID, "date": mc.date, "respin": mc.respin, "type": mc.typ}
	if mc.spec.Label != "" {
		c["label"] = mc.spec.Label
		c["final"] = strings.HasPrefix(mc.spec.Label, "RC-")
	}
	return c
}

func header(kind, version string) map[string]any {
	h := map[string]any{"version": version}
	if version != "1.0" {
		h["type"] = "productmd." + kind
	}
	return h
}

func (mc *mirrorCompose) variants() map[string][]string {
	v := map[string]map[string]bool{}
	add := func(name, arch string) {
		if v[name] == nil {
			v[name] = map[string]bool{}
		}
		if arch != "" && arch != "src" {
			v[name][arch] = true
		}
	}
	for _, im := range mc.spec.Images {
		add(im.Variant, im.Arch)
	}
	extra := mc.spec.Variants
	if extra == nil && mc.relType == "ga" && (mc.dir == "rawhide" || mc.dir == "branched" || mc.typ == "production") {
		extra = []string{"Everything"}
	}
	for _, e := range extra {
		add(e, "x86_64")
		add(e, "aarch64")
	}
	out := map[string][]string{}
	for name, arches := range v {
		list := []string{}
		for a := range arches {
			list = append(list, a)
		}
		sort.Strings(list)
		out[name] = list
	}
	return out
}

func (mc *mirrorCompose) composeInfo() map[string]any {
	variants := map[string]any{}
	for name, arches := range mc.variants() {
		paths := map[string]any{}
		os, repo := map[string]string{}, map[string]string{}
		for _, a := range arches {
			os[a] = name + "/" + a + "/os"
			repo[a] = name + "/" + a + "/os"
		}
		paths["os_tree"], paths["repository"] = os, repo
		variants[name] = map[string]any{"id": name, "uid": name, "name": name, "type": "variant", "arches": arches, "paths": paths}
	}
	rel := map[string]any{"name": "Fedora", "short": mc.short, "version": mc.version, "type": mc.relType, "internal": false}
	return map[string]any{
		"header":  header("composeinfo", mc.spec.FormatVersion),
		"payload": map[string]any{"compose": mc.composeMeta(), "release": rel, "variants": variants},
	}
}

func (mc *mirrorCompose) images() map[string]any {
	byVariant := map[string]map[string][]map[string]any{}
	for _, im := range mc.spec.Images {
		path := im.Path
		if path == "" {
			path = ImagePath(mc.spec.ID, mc.version, im)
		}
		size := im.Size
		if size == 0 {
			size = StableSize(im)
		}
		sum := fnv.New128a()
		fmt.Fprint(sum, mc.spec.ID, path)
		hex := fmt.Sprintf("%x%x", sum.Sum(nil), sum.Sum(nil))
		entry := map[string]any{
			"arch": im.Arch, "bootable": im.Format == "iso", "checksums": map[string]string{"sha256": hex},
			"disc_count": 1, "disc_number": 1, "format": im.Format, "implant_md5": nil,
			"mtime": mc.compTime().Unix(), "path": path, "size": size, "subvariant": im.Subvariant,
			"type": im.Type, "volume_id": nil,
		}
		if im.Format == "iso" {
			entry["implant_md5"] = fmt.Sprintf("%x", sum.Sum(nil))
			entry["volume_id"] = volumeID(im, mc.version)
		}
		if byVariant[im.Variant] == nil {
			byVariant[im.Variant] = map[string][]map[string]any{}
		}
		byVariant[im.Variant][im.Arch] = append(byVariant[im.Variant][im.Arch], entry)
	}
	for _, arches := range byVariant {
		for _, list := range arches {
			sort.Slice(list, func(i, j int) bool { return list[i]["path"].(string) < list[j]["path"].(string) })
		}
	}
	return map[string]any{
		"header":  header("images", mc.spec.FormatVersion),
		"payload": map[string]any{"compose": mc.composeMeta(), "images": byVariant},
	}
}

func (mc *mirrorCompose) compTime() time.Time {
	t, _ := time.Parse("20060102", mc.date)
	return t.Add(5 * time.Hour)
}

func volumeID(im ImageSpec, version string) string {
	v := strings.ToLower(version)
	if len(v) > 4 {
		v = v[:4]
	}
	return fmt.Sprintf("Fedora-%c-%s-%s-%s", im.Variant[0], im.Type, im.Arch, v)
}

// ImagePath names an image file the way Pungi does for Fedora:
// ISOs "<Variant>/<arch>/iso/Fedora-<Subvariant>-<type>-<arch>-<version>-<date>.n.<respin>.iso",
// disk images "<Variant>/<arch>/images/Fedora-<Subvariant>-<version>-<date>.n.<respin>.<arch>.<format>".
func ImagePath(id, version string, im ImageSpec) string {
	rel := id // <date>.n.<respin>
	if m := reFakeID().FindStringSubmatch(id); m != nil {
		rel = id[len(m[1])+1:]
	}
	sv := strings.ReplaceAll(im.Subvariant, "_", "-")
	if im.Format == "iso" {
		t := im.Type
		if t == "boot" {
			t = "netinst"
		}
		return fmt.Sprintf("%s/%s/iso/Fedora-%s-%s-%s-%s-%s.iso", im.Variant, im.Arch, sv, t, im.Arch, version, rel)
	}
	return fmt.Sprintf("%s/%s/images/Fedora-%s-%s-%s.%s.%s", im.Variant, im.Arch, sv, version, rel, im.Arch, im.Format)
}

// StableSize gives an image a size that depends only on its identity and
// arch, so two composes agree unless a test changes it.
func StableSize(im ImageSpec) int64 {
	h := fnv.New32a()
	fmt.Fprint(h, im.Subvariant, im.Type, im.Format, im.Arch)
	return 500<<20 + int64(h.Sum32()%(1500<<20))
}

// StandardImages is the image set of a healthy Fedora nightly: what
// Rawhide builds on x86_64, aarch64 and ppc64le, including every image
// fedfind expects and every image Fedora's openQA scheduler tests.
func StandardImages(id string) []ImageSpec {
	iso := func(variant, sv, typ, arch string) ImageSpec {
		return ImageSpec{Variant: variant, Subvariant: sv, Type: typ, Format: "iso", Arch: arch}
	}
	disk := func(variant, sv, typ, format, arch string) ImageSpec {
		return ImageSpec{Variant: variant, Subvariant: sv, Type: typ, Format: format, Arch: arch}
	}
	return []ImageSpec{
		iso("Everything", "Everything", "boot", "x86_64"),
		iso("Server", "Server", "boot", "x86_64"),
		iso("Server", "Server", "dvd", "x86_64"),
		iso("Workstation", "Workstation", "live", "x86_64"),
		iso("KDE", "KDE", "live", "x86_64"),
		iso("i3", "i3", "live", "x86_64"),
		iso("Silverblue", "Silverblue", "dvd-ostree", "x86_64"),
		disk("Cloud", "Cloud_Base", "qcow2", "qcow2", "x86_64"),
		disk("Cloud", "Cloud_Base", "raw-xz", "raw.xz", "x86_64"),
		disk("Container", "Container_Toolbox", "docker", "tar.xz", "x86_64"),
		iso("Everything", "Everything", "boot", "aarch64"),
		iso("Server", "Server", "boot", "aarch64"),
		iso("Server", "Server", "dvd", "aarch64"),
		disk("Server", "Server", "raw-xz", "raw.xz", "aarch64"),
		disk("Workstation", "Workstation", "raw-xz", "raw.xz", "aarch64"),
		disk("Spins", "Minimal", "raw-xz", "raw.xz", "aarch64"),
		disk("Cloud", "Cloud_Base", "qcow2", "qcow2", "aarch64"),
		disk("Cloud", "Cloud_Base", "raw-xz", "raw.xz", "aarch64"),
		iso("Everything", "Everything", "boot", "ppc64le"),
		iso("Server", "Server", "boot", "ppc64le"),
		iso("Server", "Server", "dvd", "ppc64le"),
	}
}
