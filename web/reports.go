package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/reports"
)

// reportFiles serves the report store: each release's index.json and each
// report's JSON, text and HTML (the canonical version, and every version
// under v/<version>/), with plain listings of releases, composes and
// versions. Nothing else is served — not the lock files, not the mail
// ledgers (they list recipients) — and every name is validated before it
// reaches the store.
type reportFiles struct {
	store Reports
	log   *slog.Logger
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
	ctx := r.Context()
	switch {
	case len(parts) == 0:
		h.listing(w, r, "", "Releases", func() ([]string, error) {
			rels, err := h.store.Releases(ctx)
			for i := range rels {
				rels[i] += "/"
			}
			return rels, err
		})
	case !reports.ValidRelease(parts[0]):
		http.NotFound(w, r)
	case len(parts) == 1 && dir:
		h.listing(w, r, parts[0], "Reports of "+parts[0], func() ([]string, error) {
			ix, err := h.store.Index(ctx, parts[0])
			if err != nil {
				return nil, err
			}
			out := []string{reports.FileIndex}
			for _, e := range ix.Reports {
				out = append(out, e.ComposeID+"/")
			}
			return out, nil
		})
	case len(parts) == 1:
		http.Redirect(w, r, "/reports/"+parts[0]+"/", http.StatusMovedPermanently)
	case len(parts) == 2 && parts[1] == reports.FileIndex && !dir:
		ix, err := h.store.Index(ctx, parts[0])
		if err != nil {
			h.missing(w, r, err)
			return
		}
		b, err := json.MarshalIndent(ix, "", "  ")
		if err != nil {
			h.missing(w, r, err)
			return
		}
		h.serve(w, r, append(b, '\n'), "application/json")
	case len(parts) == 2 && !h.composeOf(parts[0], parts[1]):
		http.NotFound(w, r)
	case len(parts) == 2 && dir:
		h.listing(w, r, parts[0]+"/"+parts[1], "Report of "+parts[1], func() ([]string, error) {
			if _, err := h.store.Read(ctx, parts[1]); err != nil {
				return nil, err
			}
			return []string{reports.FileHTML, reports.FileJSON, reports.FileText, "v/"}, nil
		})
	case len(parts) == 2:
		http.Redirect(w, r, "/reports/"+parts[0]+"/"+parts[1]+"/", http.StatusMovedPermanently)
	case len(parts) == 3 && !dir && reportFileTypes[parts[2]] != "" && h.composeOf(parts[0], parts[1]):
		h.file(w, r, parts[1], "", parts[2])
	case len(parts) == 3 && parts[2] == "v" && dir && h.composeOf(parts[0], parts[1]):
		h.listing(w, r, parts[0]+"/"+parts[1], "Versions of the report of "+parts[1], func() ([]string, error) {
			vs, err := h.store.Versions(ctx, parts[1])
			var out []string
			for i := len(vs) - 1; i >= 0; i-- { // newest first
				out = append(out, vs[i].Version+"/")
			}
			return out, err
		})
	case len(parts) == 4 && parts[2] == "v" && dir && reports.ValidVersion(parts[3]) && h.composeOf(parts[0], parts[1]):
		h.listing(w, r, parts[0]+"/"+parts[1]+"/v", "Version "+parts[3]+" of the report of "+parts[1], func() ([]string, error) {
			if _, err := h.store.ReadVersion(ctx, parts[1], parts[3]); err != nil {
				return nil, err
			}
			return []string{reports.FileHTML, reports.FileJSON, reports.FileText}, nil
		})
	case len(parts) == 5 && parts[2] == "v" && !dir && reports.ValidVersion(parts[3]) && reportFileTypes[parts[4]] != "" && h.composeOf(parts[0], parts[1]):
		h.file(w, r, parts[1], parts[3], parts[4])
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

func (h reportFiles) file(w http.ResponseWriter, r *http.Request, composeID, version, name string) {
	b, err := h.store.ReadFile(r.Context(), composeID, version, name)
	if err != nil {
		h.missing(w, r, err)
		return
	}
	h.serve(w, r, b, reportFileTypes[name])
}

func (h reportFiles) serve(w http.ResponseWriter, r *http.Request, b []byte, contentType string) {
	w.Header().Set("Content-Type", contentType)
	setSafetyHeaders(w)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (h reportFiles) missing(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, reports.ErrNotFound) && !errors.Is(err, fedfind.ErrInvalidInput) && !errors.Is(err, fs.ErrNotExist) {
		h.log.ErrorContext(r.Context(), "reading the report store", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.NotFound(w, r)
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

func (h reportFiles) listing(w http.ResponseWriter, r *http.Request, parent, title string, list func() ([]string, error)) {
	names, err := list()
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
