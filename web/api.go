// Package web serves people and scripts: a JSON API over the workflow
// state, a health endpoint for whatever supervises the listener, and the
// report archive. It only reads, except for the two operator actions
// (trigger a compose, retry a failed workflow). It serves no internals: no
// filesystem paths, lock files or mail ledgers.
package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener/event"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/triage"
)

// Workflows is what the web needs of the workflow engine
// (workflow.Engine is one).
type Workflows interface {
	List(ctx context.Context) ([]workflow.Workflow, error)
	Get(ctx context.Context, composeID string) (workflow.Workflow, error)
	Submit(ctx context.Context, e event.Event) error
	Retry(ctx context.Context, composeID string) error
	Stats(ctx context.Context) (workflow.Stats, error)
	LatestResults(ctx context.Context, limit int, keep func(workflow.Workflow) bool) ([]workflow.Result, error)
	ResultsAfter(ctx context.Context, after uint64, limit int, keep func(workflow.Workflow) bool) ([]workflow.Result, bool, error)
}

// Reports is what the web reads of the report store (reports.Store is
// one).
type Reports interface {
	Read(ctx context.Context, composeID string) (reports.Report, error)
	ReadVersion(ctx context.Context, composeID, version string) (reports.Report, error)
	ReadFile(ctx context.Context, composeID, version, name string) ([]byte, error)
	Versions(ctx context.Context, composeID string) ([]reports.Version, error)
	Index(ctx context.Context, release string) (reports.Index, error)
	Releases(ctx context.Context) ([]string, error)
}

// Check is an extra health check (the AMQP consumer is connected, say); it
// returns nil when healthy.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Options configure the handler.
type Options struct {
	Workflows Workflows
	// ReportsDir is the report archive (<data>/reports) served under
	// /reports/ and read by the dashboard; empty serves none.
	ReportsDir string
	// Streams are the release streams the service watches, as --watch
	// names them (rawhide, branched, cloud:44, ...): the dashboard shows
	// them first.
	Streams []string
	// Verdict answers "is this compose done?" from STATUS and Koji, for
	// composes whose workflow has no final verdict; nil answers from the
	// workflow alone.
	Verdict func(ctx context.Context, composeID string) (fedfind.Completeness, error)
	// Overview returns the openQA overview page of a build; nil links none.
	Overview func(version, build string) string
	// Reports is the report archive the dashboard reads; nil reads the
	// directory ReportsDir.
	Reports Reports
	// APIToken, when set, is the bearer token that writes (triggering a
	// compose, retrying a workflow) must carry; without one, writes are
	// refused with 403.
	APIToken string
	// Known is the registry of known issues the API shows and changes;
	// nil serves none.
	Known triage.Registry
	// Rerun re-runs openQA jobs of a compose (and has the pipeline check it
	// again); nil refuses re-runs.
	Rerun func(ctx context.Context, req triage.Request) (triage.Result, error)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxSilence makes /healthz fail when no event arrived for longer
	// (zero: never).
	MaxSilence time.Duration
	Checks     []Check
	// Metrics serves /metrics (Prometheus's text format); nil serves none.
	Metrics http.Handler
	Logger  *slog.Logger
}

// NewHandler returns the HTTP handler:
//
//	GET  /healthz                          200 healthy, 503 not (JSON either way)
//	GET  /api/v1/workflows                 every workflow
//	GET  /api/v1/workflows/{id}            one workflow
//	POST /api/v1/workflows/{id}            trigger: an event for the compose (source "cli")
//	POST /api/v1/workflows/{id}/retry      resume a failed workflow
//	GET  /api/v1/stats                     the pipeline's snapshot
//	GET  /reports/...                      the report archive: reports and indexes only
func NewHandler(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Reports == nil && o.ReportsDir != "" {
		o.Reports = reports.Archive{Dir: o.ReportsDir, Logger: o.Logger}
	}
	h := &handler{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /api/v1/workflows", h.list)
	mux.HandleFunc("GET /api/v1/workflows/{id}", h.get)
	mux.HandleFunc("POST /api/v1/workflows/{id}", h.write(h.trigger))
	mux.HandleFunc("POST /api/v1/workflows/{id}/retry", h.write(h.retry))
	mux.HandleFunc("GET /api/v1/stats", h.stats)
	mux.HandleFunc("GET /api/v1/streams", h.apiStreams)
	mux.HandleFunc("GET /api/v1/composes", h.apiComposes)
	mux.HandleFunc("GET /api/v1/composes/{id}", h.apiCompose)
	mux.HandleFunc("GET /api/v1/composes/{id}/done", h.apiDone)
	mux.HandleFunc("POST /api/v1/composes/{id}/rerun", h.write(h.apiRerun))
	mux.HandleFunc("GET /api/v1/known-issues", h.apiKnownList)
	mux.HandleFunc("GET /api/v1/known-issues/history", h.apiKnownHistory)
	mux.HandleFunc("POST /api/v1/known-issues", h.write(h.apiKnownAdd))
	mux.HandleFunc("DELETE /api/v1/known-issues/{id}", h.write(h.apiKnownRemove))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) { h.apiNotFound(mux, w, r) })
	mux.HandleFunc("GET /{$}", h.pageHome)
	mux.HandleFunc("GET /streams/{stream}", h.pageStream)
	mux.HandleFunc("GET /composes/{id}", h.pageCompose)
	mux.Handle("GET /assets/", assets())
	if o.Reports != nil {
		mux.Handle("GET /reports/", http.StripPrefix("/reports", reportFiles{store: o.Reports, log: o.Logger}))
	}
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	return mux
}

type handler struct{ o Options }

// apiNotFound answers, in JSON, a request no API route takes: 405 with the
// methods allowed when the path exists, 404 when it does not.
func (h *handler) apiNotFound(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/api/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.Method + " is not allowed on " + r.URL.Path})
		return
	}
	h.writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such API: " + r.URL.Path})
}

// write guards an API write: without a configured token writes are
// refused (403); with one, the request must carry it as a bearer token
// (401 otherwise). The comparison takes the same time whatever the guess.
func (h *handler) write(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.o.APIToken == "" {
			h.writeJSON(w, http.StatusForbidden, map[string]string{"error": "writes are disabled: this server has no API token (--api-token-file)"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(h.o.APIToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="composeci"`)
			h.writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a write needs the API token: Authorization: Bearer <token>"})
			return
		}
		next(w, r)
	}
}

func (h *handler) writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		h.o.Logger.Debug("writing a response failed", "err", err)
	}
}

// fail maps an error to a status: bad input 400, unknown compose 404, a
// workflow that cannot be retried 409, anything else 500 (logged, not
// shown: internal errors can name internal hosts).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.Is(err, fedfind.ErrInvalidInput):
		code, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, workflow.ErrNotFound), errors.Is(err, errUnknownCompose), errors.Is(err, triage.ErrNotFound):
		code, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, workflow.ErrNotRetryable):
		code, msg = http.StatusConflict, err.Error()
	default:
		h.o.Logger.ErrorContext(r.Context(), "API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	h.writeJSON(w, code, map[string]string{"error": msg})
}

// composeID reads and validates the {id} path value.
func composeID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	cid, err := fedfind.ParseComposeID(id)
	if err != nil {
		return "", err
	}
	return cid.String(), nil
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	type check struct {
		Name  string `json:"name"`
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
	}
	res := struct {
		OK     bool            `json:"ok"`
		Checks []check         `json:"checks"`
		Stats  *workflow.Stats `json:"stats,omitempty"`
	}{OK: true}
	add := func(name string, err error) {
		c := check{Name: name, OK: err == nil}
		if err != nil {
			c.Error, res.OK = err.Error(), false
		}
		res.Checks = append(res.Checks, c)
	}
	st, err := h.o.Workflows.Stats(r.Context())
	add("pipeline", err)
	if err == nil {
		res.Stats = &st
		if h.o.MaxSilence > 0 {
			add("events", st.CheckEvents(h.o.MaxSilence))
		}
		if len(st.Overdue) > 0 {
			add("overdue", errors.New("workflows overdue: "+joinShort(st.Overdue)))
		}
	}
	for _, c := range h.o.Checks {
		add(c.Name, c.Fn(r.Context()))
	}
	code := http.StatusOK
	if !res.OK {
		code = http.StatusServiceUnavailable
	}
	h.writeJSON(w, code, res)
}

func joinShort(ids []string) string {
	out := ""
	for i, id := range ids {
		if i == 5 {
			return out + ", ..."
		}
		if i > 0 {
			out += ", "
		}
		out += id
	}
	return out
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	wfs, err := h.o.Workflows.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]workflowJSON, len(wfs))
	for i, wf := range wfs {
		out[i] = withLinks(wf)
	}
	h.writeJSON(w, http.StatusOK, out)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	id, err := composeID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	wf, err := h.o.Workflows.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, withLinks(wf))
}

func (h *handler) trigger(w http.ResponseWriter, r *http.Request) {
	id, err := composeID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ev := event.Event{Kind: event.KindComposeStatus, ComposeID: id, Source: event.SourceCLI, At: time.Now().UTC()}
	if err := h.o.Workflows.Submit(r.Context(), ev); err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusAccepted, map[string]string{"compose_id": id, "status": "submitted"})
}

func (h *handler) retry(w http.ResponseWriter, r *http.Request) {
	id, err := composeID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.o.Workflows.Retry(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusAccepted, map[string]string{"compose_id": id, "status": "retrying"})
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	st, err := h.o.Workflows.Stats(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, st)
}

// workflowJSON is a workflow as the API shows it: the record, and links to
// what it produced.
type workflowJSON struct {
	workflow.Workflow
	// Links name the workflow itself and, once its report is archived, the
	// report in each form, as paths on this server.
	Links map[string]string `json:"links"`
}

func withLinks(wf workflow.Workflow) workflowJSON {
	out := workflowJSON{Workflow: wf, Links: map[string]string{"self": "/api/v1/workflows/" + wf.ComposeID}}
	if wf.Data["report"] == "" {
		return out
	}
	// The archive's layout, not what the record says: a record written
	// by an older composeci may hold a filesystem path.
	rel, err := reports.ReleaseOf(wf.ComposeID)
	if err != nil {
		return out
	}
	base := "/reports/" + rel + "/" + wf.ComposeID + "/"
	out.Links["report_html"] = base + reports.FileHTML
	out.Links["report_json"] = base + reports.FileJSON
	out.Links["report_text"] = base + reports.FileText
	return out
}
