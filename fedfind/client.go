package fedfind

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/composeci/composeci/internal/httpclient"
)

// DefaultComposeRoot is Fedora's compose tree.
const DefaultComposeRoot = "https://kojipkgs.fedoraproject.org/compose"

// FedoraPrefixes are the URL prefixes (without scheme) fedfind trusts for
// compose URLs since its 3.4.1 security fix; composeci trusts these plus its
// configured compose root.
var FedoraPrefixes = []string{
	"download.fedoraproject.org/pub",
	"dl.fedoraproject.org/pub",
	"kojipkgs.fedoraproject.org/compose",
	"ppc.koji.fedoraproject.org/compose",
	"s390.koji.fedoraproject.org/compose",
	"arm.koji.fedoraproject.org/compose",
}

// Size limits for what the client reads into memory. rpms.json is streamed
// and has no limit.
const (
	maxSmallFile = 1 << 20   // STATUS, COMPOSE_ID
	maxMetadata  = 256 << 20 // composeinfo.json, images.json
	maxListing   = 32 << 20  // a directory listing
)

// ErrComposeNotFound is wrapped when a compose (or a stream's latest link)
// does not exist in the tree.
var ErrComposeNotFound = errors.New("compose not found")

// ErrUntrustedRedirect is wrapped when a server of the tree redirects a
// request out of the trees the client trusts; the redirect is not followed.
var ErrUntrustedRedirect = errors.New("redirect out of the trusted trees")

// ErrMismatch is wrapped when a compose's metadata names another compose
// than the one asked for (fedfind's CidMatchError).
var ErrMismatch = errors.New("compose ID mismatch")

// ClientOptions configures a Client.
type ClientOptions struct {
	// Root is the base URL of the compose tree; default DefaultComposeRoot.
	Root string
	// HTTP is the client for every request; default httpclient.New.
	HTTP *httpclient.Client
	// Logger; default discards.
	Logger *slog.Logger
}

// Client finds composes in a compose tree and reads their metadata.
type Client struct {
	root    string
	http    *httpclient.Client
	log     *slog.Logger
	trusted []string
	// settled remembers, per compose ID, when this client first saw its
	// STATUS final (on the Koji client's clock): Koji answers fetched since
	// then may stand for later verdicts (see Completeness).
	settled sync.Map
}

// NewClient returns a Client for the tree at opts.Root.
func NewClient(opts ClientOptions) (*Client, error) {
	root := opts.Root
	if root == "" {
		root = DefaultComposeRoot
	}
	u, err := url.Parse(root)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: compose root %q is not an http(s) URL", ErrInvalidInput, root)
	}
	c := &Client{root: strings.TrimSuffix(u.String(), "/"), http: opts.HTTP, log: opts.Logger}
	if c.http == nil {
		c.http = httpclient.New(httpclient.Options{Logger: opts.Logger})
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.trusted = append([]string{stripScheme(c.root)}, FedoraPrefixes...)
	// Never follow a redirect out of the trees the client trusts: what it
	// reads there decides what is tested and reported.
	c.http = c.http.WithRedirectCheck(c.checkRedirect)
	return c, nil
}

// Root returns the compose root URL.
func (c *Client) Root() string { return c.root }

// RoundTrips returns the number of HTTP requests the client has made.
func (c *Client) RoundTrips() int64 { return c.http.RoundTrips() }

// Compose is a compose located in the tree.
type Compose struct {
	ID     ComposeID `json:"-"`
	Stream Stream    `json:"stream"`
	// Dir is the URL of the compose directory (STATUS, COMPOSE_ID, logs/).
	Dir string `json:"dir"`
	// Location is the URL of its published tree, Dir + "/compose".
	Location string `json:"location"`
}

// Locate places a compose in the tree by its ID alone, without any request.
func (c *Client) Locate(id ComposeID) (*Compose, error) {
	s := StreamOf(id)
	if s.Dir == "" {
		return nil, fmt.Errorf("%w: %s belongs to no stream composeci knows the place of; give its URL instead", ErrInvalidInput, id)
	}
	dir := c.root + "/" + s.Dir + "/" + id.String()
	return &Compose{ID: id, Stream: s, Dir: dir, Location: dir + "/compose"}, nil
}

// Resolve finds the compose ref names: a compose ID
// (Fedora-Rawhide-20261122.n.0), a URL inside a compose's tree or of a
// latest-* link, under the compose root or a Fedora prefix (see FromURL), a stream
// spec (rawhide, branched, branched:44, ...) for that stream's latest
// compose, or a release and label (44:Beta-1.2) for a candidate compose.
func (c *Client) Resolve(ctx context.Context, ref string) (*Compose, error) {
	ref = strings.TrimSpace(ref)
	if strings.Contains(ref, "://") {
		return c.FromURL(ctx, ref)
	}
	if spec, ok, err := ParseStreamSpec(ref); err != nil {
		return nil, err
	} else if ok {
		return c.Latest(ctx, spec)
	}
	if release, label, ok, err := parseLabelRef(ref); err != nil {
		return nil, err
	} else if ok {
		return c.ResolveLabel(ctx, release, label)
	}
	id, err := ParseComposeID(ref)
	if err != nil {
		return nil, err
	}
	return c.Locate(id)
}

// FromURL locates a compose by any URL inside its tree: its directory, its
// /compose directory or anything below either (metadata, an image, a log),
// or a stream's latest-* link (or anything below it). The URL must be http
// or https, lie under the compose root or one of FedoraPrefixes, and carry
// no query, fragment, user or dot segment.
//
// The path is cut at the first directory below the trusted prefix that is a
// compose ID (validated strictly, as ParseComposeID does): that directory is
// the compose, and no request is made. A latest-* link is no compose ID: the
// compose it points at is read from the link's COMPOSE_ID file or, when
// there is none, from its compose/metadata/composeinfo.json, and placed
// beside the link, where Pungi puts the composes its links point at
// (docs/protocols.md, section (a)). A URL into the metadata archive names
// the compose by its ID alone.
func (c *Client) FromURL(ctx context.Context, raw string) (*Compose, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an http(s) URL", ErrInvalidInput, raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: compose URL %q must not carry a query, fragment or user", ErrInvalidInput, raw)
	}
	bare := u.Host + strings.TrimSuffix(u.EscapedPath(), "/")
	prefix := ""
	for _, p := range c.trusted {
		if (bare == p || strings.HasPrefix(bare, p+"/")) && len(p) > len(prefix) {
			prefix = p
		}
	}
	if prefix == "" {
		return nil, fmt.Errorf("%w: %s is outside the compose root %s and Fedora's compose and mirror trees", ErrInvalidInput, raw, c.root)
	}
	// The directories below the trusted prefix, as sent (escaped) and as
	// meant (unescaped).
	var segs, names []string
	if rest := strings.TrimPrefix(bare, prefix); rest != "" {
		segs = strings.Split(rest[1:], "/")
	}
	for _, s := range strings.Split(u.EscapedPath(), "/") {
		if n, err := url.PathUnescape(s); err != nil || n == "." || n == ".." || strings.ContainsAny(n, "/\\") {
			return nil, fmt.Errorf("%w: compose URL %q has a dot segment or an escaped separator", ErrInvalidInput, raw)
		}
	}
	for _, s := range segs {
		n, _ := url.PathUnescape(s) // checked above
		if n == "" {
			return nil, fmt.Errorf("%w: compose URL %q has an empty path segment", ErrInvalidInput, raw)
		}
		names = append(names, n)
	}
	base := u.Scheme + "://" + prefix
	for i, n := range names {
		dir := strings.Join(append([]string{base}, segs[:i+1]...), "/")
		if id, err := ParseComposeID(n); err == nil {
			if slices.Contains(names[:i], "metadata-archive") {
				return c.Locate(id)
			}
			return &Compose{ID: id, Stream: StreamOf(id), Dir: dir, Location: dir + "/compose"}, nil
		}
		if isLatestLink(n) {
			id, err := c.latestTarget(ctx, dir, n)
			if err != nil {
				return nil, err
			}
			cdir := strings.Join(append([]string{base}, segs[:i]...), "/") + "/" + id.String()
			return &Compose{ID: id, Stream: StreamOf(id), Dir: cdir, Location: cdir + "/compose"}, nil
		}
	}
	return nil, fmt.Errorf("%w: %s names no compose: no directory of its path below %s is a compose ID (like Fedora-Rawhide-20261122.n.0) or a latest-* link", ErrInvalidInput, raw, base)
}

// isLatestLink reports whether name looks like a latest-* link Pungi makes:
// latest-, then the safe characters of a compose ID prefix.
func isLatestLink(name string) bool {
	rest, ok := strings.CutPrefix(name, "latest-")
	if !ok || rest == "" || len(name) > maxComposeIDLen || strings.Contains(rest, "..") {
		return false
	}
	for i, r := range rest {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && strings.ContainsRune("_.+-", r):
		default:
			return false
		}
	}
	return true
}

// latestTarget reads which compose the latest-* link dir (named name)
// points at: its COMPOSE_ID file, or its composeinfo.json when it has no
// COMPOSE_ID. Pungi names a link latest-<short>-<version>, shortening a
// dotted version and appending a layered product's base, so the compose ID
// must start with what follows "latest-".
func (c *Client) latestTarget(ctx context.Context, dir, name string) (ComposeID, error) {
	u := dir + "/COMPOSE_ID"
	var id ComposeID
	b, err := c.get(ctx, u, "text/plain", maxSmallFile)
	switch {
	case err == nil:
		if id, err = ParseComposeID(strings.TrimSpace(string(b))); err != nil {
			return ComposeID{}, &MetadataError{File: u, Err: err}
		}
	case errors.Is(err, httpclient.ErrNotFound):
		u = dir + "/compose/metadata/composeinfo.json"
		var ci *ComposeInfo
		err = c.getStream(ctx, u, "application/json", func(r io.Reader) (err error) {
			ci, err = ParseComposeInfo(io.LimitReader(r, maxMetadata), u)
			return err
		})
		if errors.Is(err, httpclient.ErrNotFound) {
			return ComposeID{}, fmt.Errorf("%w: %s has neither a COMPOSE_ID nor a compose/metadata/composeinfo.json", ErrComposeNotFound, dir)
		}
		if err != nil {
			return ComposeID{}, err
		}
		id = ci.ID
	default:
		return ComposeID{}, err
	}
	want := strings.TrimPrefix(name, "latest-")
	if p := id.Prefix; p != want && !strings.HasPrefix(p, want+"-") && !strings.HasPrefix(p, want+".") {
		return ComposeID{}, fmt.Errorf("%w: %s points at %s, which is not a compose of %s", ErrMismatch, name, id, want)
	}
	return id, nil
}

// maxRedirects is how many redirects a request may follow, as Go's default.
const maxRedirects = 10

// checkRedirect refuses a redirect to anywhere but the compose root and
// FedoraPrefixes.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if c.trustedURL(req.URL) {
		return nil
	}
	return fmt.Errorf("%w: refusing the redirect to %s, outside the compose root %s and Fedora's compose and mirror trees", ErrUntrustedRedirect, req.URL.Redacted(), c.root)
}

// trustedURL reports whether u lies under the compose root or one of
// FedoraPrefixes.
func (c *Client) trustedURL(u *url.URL) bool {
	if u.Scheme != "http" && u.Scheme != "https" || u.User != nil {
		return false
	}
	bare := u.Host + u.EscapedPath()
	for _, p := range c.trusted {
		if bare == p || strings.HasPrefix(bare, p+"/") {
			return true
		}
	}
	return false
}

func stripScheme(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		return s[i+3:]
	}
	return s
}

// Latest finds the newest finished compose of a stream through its latest-*
// link (its COMPOSE_ID, or its composeinfo.json when it has none). For
// "branched" without a version it picks the highest release that
// has a latest link in the branched directory. Where the link is missing
// (Pungi run with --no-latest-link, as updates composes are) or names a
// compose of another stream (updates and updates-testing share a link
// name), the stream directory's listing is read and the newest successful
// compose of the stream taken, as Previous does.
func (c *Client) Latest(ctx context.Context, spec StreamSpec) (*Compose, error) {
	s, err := c.specStream(ctx, spec)
	if err != nil {
		return nil, err
	}
	id, err := c.latestTarget(ctx, c.root+"/"+s.Dir+"/"+s.LatestLink(), s.LatestLink())
	if errors.Is(err, ErrComposeNotFound) {
		cm, lerr := c.latestByListing(ctx, s)
		if lerr != nil {
			return nil, fmt.Errorf("%w: %s has no %s link (no compose of it has finished yet?), and %w", ErrComposeNotFound, s, s.LatestLink(), lerr)
		}
		return cm, nil
	}
	if err != nil {
		return nil, err
	}
	cm, err := c.Locate(id)
	if err != nil {
		return nil, err
	}
	if cm.Stream.Kind != s.Kind || cm.Stream.Version != s.Version {
		other, lerr := c.latestByListing(ctx, s)
		if lerr != nil {
			return nil, fmt.Errorf("%w: %s points at %s, which is not of stream %s, and %w", ErrMismatch, s.LatestLink(), id, s, lerr)
		}
		return other, nil
	}
	return cm, nil
}

// specStream is the stream spec names, its version found for "branched"
// without one: the highest release with a latest link in the branched
// directory.
func (c *Client) specStream(ctx context.Context, spec StreamSpec) (Stream, error) {
	s := spec.Stream()
	if s.Version == "" {
		v, err := c.newestBranched(ctx)
		if err != nil {
			return Stream{}, err
		}
		s.Version = v
	}
	return s, nil
}

// ResolveNewest is Resolve, except that a stream spec names the stream's
// newest compose whatever its STATUS (Newest), not its newest finished
// one: the compose a release engineer asking "is rawhide done?" means.
func (c *Client) ResolveNewest(ctx context.Context, ref string) (*Compose, error) {
	if spec, ok, err := ParseStreamSpec(strings.TrimSpace(ref)); err != nil {
		return nil, err
	} else if ok {
		return c.Newest(ctx, spec)
	}
	return c.Resolve(ctx, ref)
}

// Newest finds the newest compose of a stream, finished or not: the newest
// of the stream's IDs in its directory's listing. Where the server offers
// no listing, or the listing holds none of the stream, it is the compose
// the latest-* link names (Latest), the newest finished one.
func (c *Client) Newest(ctx context.Context, spec StreamSpec) (*Compose, error) {
	s, err := c.specStream(ctx, spec)
	if err != nil {
		return nil, err
	}
	spec.Version = s.Version
	ids, err := c.ListComposes(ctx, s)
	if err != nil {
		c.log.Debug("no listing; the newest compose is the latest link's", "stream", s.Dir, "err", err)
		return c.Latest(ctx, spec)
	}
	for _, id := range ids { // newest first
		if cm, err := c.Locate(id); err == nil && cm.Stream.Kind == s.Kind && cm.Stream.Version == s.Version {
			return cm, nil
		}
	}
	return c.Latest(ctx, spec)
}

// latestByListing finds the newest successful compose of s in its
// directory's listing, reading at most 30 composes' STATUS.
func (c *Client) latestByListing(ctx context.Context, s Stream) (*Compose, error) {
	ids, err := c.ListComposes(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("the listing of %s/%s could not be read: %w", c.root, s.Dir, err)
	}
	tried := 0
	for _, id := range ids { // newest first
		cm, err := c.Locate(id)
		if err != nil || cm.Stream.Kind != s.Kind || cm.Stream.Version != s.Version {
			continue
		}
		if tried++; tried > 30 {
			break
		}
		p, _, ok, err := c.successful(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			return p, nil
		}
	}
	return nil, fmt.Errorf("the listing of %s/%s shows no successful compose of %s (%d read)", c.root, s.Dir, s, min(tried, 30))
}

// reLatestBranched finds the branched release in the latest-* links,
// compiled on first use (docs/conventions.md).
var reLatestBranched = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^latest-Fedora-([1-9][0-9]{0,3})$`) })

func (c *Client) newestBranched(ctx context.Context) (string, error) {
	names, err := c.listDir(ctx, c.root+"/branched/")
	if errors.Is(err, httpclient.ErrNotFound) {
		return "", fmt.Errorf("%w: %s/branched does not exist (no Branched release now?)", ErrComposeNotFound, c.root)
	}
	if err != nil {
		return "", fmt.Errorf("finding the current Branched release: %w", err)
	}
	best := 0
	for _, n := range names {
		if m := reLatestBranched().FindStringSubmatch(n); m != nil {
			var v int
			fmt.Sscan(m[1], &v)
			best = max(best, v)
		}
	}
	if best == 0 {
		return "", fmt.Errorf("%w: no latest-Fedora-<N> link in %s/branched (no Branched release now?)", ErrComposeNotFound, c.root)
	}
	return fmt.Sprint(best), nil
}

// Status reads the compose's Pungi STATUS. A compose that does not exist (or
// has no STATUS yet) gives an error wrapping ErrComposeNotFound.
func (c *Client) Status(ctx context.Context, cm *Compose) (Status, error) {
	u := cm.Dir + "/STATUS"
	b, err := c.get(ctx, u, "text/plain", maxSmallFile)
	if errors.Is(err, httpclient.ErrNotFound) {
		return "", fmt.Errorf("%w: %s (no %s)", ErrComposeNotFound, cm.ID, u)
	}
	if err != nil {
		return "", err
	}
	return ParseStatus(b, u)
}

// ComposeInfo reads the compose's composeinfo.json (from the metadata
// archive when the tree is gone) and checks that it describes this compose.
func (c *Client) ComposeInfo(ctx context.Context, cm *Compose) (*ComposeInfo, error) {
	ci, archived, err := fetchMetadata(ctx, c, cm, "composeinfo.json", func(r io.Reader, u string) (*ComposeInfo, error) {
		return ParseComposeInfo(io.LimitReader(r, maxMetadata), u)
	})
	if err != nil {
		return nil, err
	}
	if ci.ID != cm.ID {
		return nil, fmt.Errorf("%w: composeinfo.json of %s describes %s", ErrMismatch, cm.ID, ci.ID)
	}
	ci.Archived = archived
	return ci, nil
}

// ImagesFile reads the compose's images.json (from the metadata archive
// when the tree is gone) and checks that it describes this compose.
func (c *Client) ImagesFile(ctx context.Context, cm *Compose) (*ImagesFile, error) {
	f, archived, err := fetchMetadata(ctx, c, cm, "images.json", func(r io.Reader, u string) (*ImagesFile, error) {
		return ParseImages(io.LimitReader(r, maxMetadata), u, cm.Location)
	})
	if err != nil {
		return nil, err
	}
	if f.ID != cm.ID {
		return nil, fmt.Errorf("%w: images.json of %s describes %s", ErrMismatch, cm.ID, f.ID)
	}
	f.Archived = archived
	return f, nil
}

// fetchMetadata reads compose/metadata/<name> from the tree and, when the
// tree does not have it, from the metadata archive. It reports whether the
// archive answered; when neither has the file, the tree's not-found error
// comes back.
func fetchMetadata[T any](ctx context.Context, c *Client, cm *Compose, name string, parse func(io.Reader, string) (T, error)) (T, bool, error) {
	var v T
	read := func(r io.Reader, u string) (err error) {
		v, err = parse(r, u)
		return err
	}
	u := cm.Location + "/metadata/" + name
	err := c.getStream(ctx, u, "application/json", func(r io.Reader) error { return read(r, u) })
	if !errors.Is(err, httpclient.ErrNotFound) {
		return v, false, err
	}
	if aerr := c.archived(ctx, cm, name, read); aerr == nil {
		return v, true, nil
	} else if !errors.Is(aerr, httpclient.ErrNotFound) {
		return v, false, aerr
	}
	return v, false, err
}

// Images lists the compose's images. When there is no images.json it says
// why: the compose is not in the tree, Pungi has not written it yet (it
// does at the end), the compose ended DOOMED or TERMINATED without images,
// or the file is missing from a finished compose; the error still matches
// httpclient.ErrNotFound.
func (c *Client) Images(ctx context.Context, cm *Compose) ([]Image, error) {
	f, err := c.ImagesFile(ctx, cm)
	if errors.Is(err, httpclient.ErrNotFound) {
		st, serr := c.Status(ctx, cm)
		switch {
		case errors.Is(serr, ErrComposeNotFound):
			return nil, fmt.Errorf("%w: %s is not in %s (%w)", ErrComposeNotFound, cm.ID, c.root, err)
		case serr == nil && st.Failed():
			return nil, fmt.Errorf("%s ended %s without images (it has no images.json): %w", cm.ID, st, err)
		case serr == nil && st.Success():
			return nil, fmt.Errorf("%s finished (STATUS %s), but its images.json is missing from the tree and the metadata archive: %w", cm.ID, st, err)
		case serr == nil:
			return nil, fmt.Errorf("%s has no images.json yet (STATUS %s): Pungi writes it when the compose ends: %w", cm.ID, st, err)
		}
	}
	if err != nil {
		return nil, err
	}
	return f.Images, nil
}

// StreamRPMs streams the compose's rpms.json through fn, one package at a
// time.
func (c *Client) StreamRPMs(ctx context.Context, cm *Compose, fn func(RPM) error) (RPMsHeader, error) {
	u := cm.Location + "/metadata/rpms.json"
	var h RPMsHeader
	err := c.getStream(ctx, u, "application/json", func(r io.Reader) (err error) {
		h, err = StreamRPMs(r, u, fn)
		return err
	})
	return h, err
}

// ListComposes lists the compose IDs in a stream's directory of the tree,
// read from the server's directory listing, newest first.
func (c *Client) ListComposes(ctx context.Context, s Stream) ([]ComposeID, error) {
	if s.Dir == "" {
		return nil, fmt.Errorf("%w: stream %s has no directory", ErrInvalidInput, s)
	}
	names, err := c.listDir(ctx, c.root+"/"+s.Dir+"/")
	if err != nil {
		return nil, err
	}
	var ids []ComposeID
	for _, n := range names {
		if id, err := ParseComposeID(n); err == nil {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b ComposeID) int { return b.Compare(a) })
	return slices.Compact(ids), nil
}

// reHref finds the links of a directory listing, compiled on first use
// (docs/conventions.md).
var reHref = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)href="([^"]+)"`) })

// listDir reads an HTML directory listing (Apache or nginx autoindex) and
// returns the names of its entries, without trailing slashes. A link may be
// relative ("Fedora-Rawhide-20261122.n.0/"), absolute in path
// ("/compose/rawhide/Fedora-Rawhide-20261122.n.0/") or a full URL on the
// same server: each is resolved against the listing's URL, and only those
// naming an entry of the listed directory are kept (not its parent, not
// sorting links such as "?C=M;O=D", not another server).
func (c *Client) listDir(ctx context.Context, u string) ([]string, error) {
	b, err := c.get(ctx, u, "text/html", maxListing)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("%w: listing URL %q: %v", ErrInvalidInput, u, err)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		base.RawPath = ""
	}
	var names []string
	for _, m := range reHref().FindAllSubmatch(b, -1) {
		h := html.UnescapeString(string(m[1]))
		if strings.ContainsAny(h, "?#") {
			continue
		}
		ref, err := url.Parse(h)
		if err != nil {
			continue
		}
		ref = base.ResolveReference(ref)
		if ref.Scheme != base.Scheme || ref.Host != base.Host || !strings.HasPrefix(ref.Path, base.Path) {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(ref.Path, base.Path), "/")
		if name == "" || strings.Contains(name, "/") {
			continue
		}
		names = append(names, name)
	}
	return names, nil
}

// get fetches u into memory, reading at most limit bytes.
func (c *Client) get(ctx context.Context, u, accept string, limit int64) ([]byte, error) {
	var b []byte
	err := c.getStream(ctx, u, accept, func(r io.Reader) error {
		var err error
		b, err = io.ReadAll(io.LimitReader(r, limit+1))
		if err == nil && int64(len(b)) > limit {
			err = fmt.Errorf("GET %s: more than %d bytes", u, limit)
		}
		return err
	})
	return b, err
}

// getStream fetches u and hands its body to read. A 404 gives a
// httpclient.StatusError matching httpclient.ErrNotFound.
func (c *Client) getStream(ctx context.Context, u, accept string, read func(io.Reader) error) error {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", accept)
	c.log.Debug("GET", "url", u)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it would repeat the method and URL
		}
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return &httpclient.StatusError{URL: u, Code: resp.StatusCode}
	}
	if err := read(resp.Body); err != nil {
		var me *MetadataError
		if errors.As(err, &me) || errors.Is(err, ErrStop) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("GET %s: %w", u, ctx.Err())
		}
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}
