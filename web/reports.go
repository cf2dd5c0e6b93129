package web

import (
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/reports"
)

// reportFiles serves the report archive: each release's index.json and each
// report's JSON, text and HTML, with plain listings of releases and
// composes. Nothing else in the archive directory is served — not the lock
// files, not the mail ledgers (they list recipients) — and every name is
// validated before it reaches the filesystem, which is opened through an
// os.Root.
type reportFiles struct {
	dir string
	log *slog.Logger
}

// reportFileTypes are the files served, with their content types.
var reportFileTypes = map[string]string{
	reports.FileJSON: "application/json",
	reports.FileText: "text/plain; charset=utf-8",
	reports.FileHTML: "text/html; charset=utf-8",
}

func (h reportFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "" {
		http.Redirect(w, r, "/reports/", http.StatusMovedPermanently)
		return
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if parts[0] == "" {
		parts = nil
	}
	dir := strings.HasSuffix(p, "/")
	switch {
	case len(parts) == 0:
		h.listing(w, r, "", "Releases", h.releases)
	case !reports.ValidRelease(parts[0]):
		http.NotFound(w, r)
	case len(parts) == 1 && dir:
		h.listing(w, r, parts[0], "Reports of "+parts[0], func(root *os.Root) ([]string, error) { return h.composes(root, parts[0]) })
	case len(parts) == 1:
		http.Redirect(w, r, "/reports/"+parts[0]+"/", http.StatusMovedPermanently)
	case len(parts) == 2 && parts[1] == reports.FileIndex && !dir:
		h.file(w, r, path.Join(parts[0], reports.FileIndex), "application/json")
	case len(parts) == 2 && !h.composeOf(parts[0], parts[1]):
		http.NotFound(w, r)
	case len(parts) == 2 && dir:
		h.listing(w, r, parts[0]+"/"+parts[1], "Report of "+parts[1], func(root *os.Root) ([]string, error) {
			return h.reportFiles(root, path.Join(parts[0], parts[1]))
		})
	case len(parts) == 2:
		http.Redirect(w, r, "/reports/"+parts[0]+"/"+parts[1]+"/", http.StatusMovedPermanently)
	case len(parts) == 3 && !dir && reportFileTypes[parts[2]] != "" && h.composeOf(parts[0], parts[1]):
		h.file(w, r, path.Join(parts...), reportFileTypes[parts[2]])
	default:
		http.NotFound(w, r)
	}
}

// composeOf reports whether id is a canonical compose ID filed under
// release.
func (h reportFiles) composeOf(release, id string) bool {
	cid, err := fedfind.ParseComposeID(id)
	if err != nil || cid.String() != id {
		return false
	}
	rel, err := reports.ReleaseOf(id)
	return err == nil && rel == release
}

func (h reportFiles) open() (*os.Root, error) { return os.OpenRoot(h.dir) }

func (h reportFiles) file(w http.ResponseWriter, r *http.Request, name, contentType string) {
	root, err := h.open()
	if err != nil {
		h.missing(w, r, err)
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		h.missing(w, r, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", contentType)
	setSafetyHeaders(w)
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func (h reportFiles) missing(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, fs.ErrNotExist) {
		h.log.ErrorContext(r.Context(), "reading the report archive", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.NotFound(w, r)
}

// releases lists the release directories.
func (h reportFiles) releases(root *os.Root) ([]string, error) {
	return h.entries(root, ".", func(e fs.DirEntry) (string, bool) {
		return e.Name() + "/", e.IsDir() && reports.ValidRelease(e.Name())
	})
}

// composes lists a release's index and its compose directories.
func (h reportFiles) composes(root *os.Root, release string) ([]string, error) {
	return h.entries(root, release, func(e fs.DirEntry) (string, bool) {
		if e.Name() == reports.FileIndex && e.Type().IsRegular() {
			return e.Name(), true
		}
		return e.Name() + "/", e.IsDir() && h.composeOf(release, e.Name())
	})
}

// reportFiles lists the report files of a compose.
func (h reportFiles) reportFiles(root *os.Root, dir string) ([]string, error) {
	return h.entries(root, dir, func(e fs.DirEntry) (string, bool) {
		return e.Name(), e.Type().IsRegular() && reportFileTypes[e.Name()] != ""
	})
}

func (h reportFiles) entries(root *os.Root, dir string, keep func(fs.DirEntry) (string, bool)) ([]string, error) {
	f, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if name, ok := keep(e); ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// listingPage is the page of a directory of the archive, parsed on first
// use, not at start-up, where every command would pay for it
// (docs/conventions.md); a parsed template is safe for concurrent use.
var listingPage = sync.OnceValue(func() *template.Template { return template.Must(template.New("listing").Parse(listingHTML)) })

const listingHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ .Title }}</title></head>
<body style="font-family: sans-serif">
<h1>{{ .Title }}</h1>
{{- if .Parent }}<p><a href="../">..</a></p>{{ end }}
<ul>
{{- range .Entries }}
<li><a href="{{ . }}">{{ . }}</a></li>
{{- else }}
<li>nothing yet</li>
{{- end }}
</ul>
</body></html>
`

func (h reportFiles) listing(w http.ResponseWriter, r *http.Request, parent, title string, list func(*os.Root) ([]string, error)) {
	root, err := h.open()
	if err != nil {
		h.missing(w, r, err)
		return
	}
	defer root.Close()
	names, err := list(root)
	if err != nil {
		h.missing(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	setSafetyHeaders(w)
	if err := listingPage().Execute(w, struct {
		Title   string
		Parent  bool
		Entries []string
	}{title, parent != "", names}); err != nil {
		h.log.DebugContext(r.Context(), "writing a listing failed", "err", err)
	}
}

// setSafetyHeaders keeps a browser from guessing content types and from
// running or fetching anything a page holds: reports carry text from
// composes and openQA, escaped, and this is the second line of defence.
func setSafetyHeaders(w http.ResponseWriter) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")
}
