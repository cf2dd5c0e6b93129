// Package web serves people and scripts: a JSON API over the workflow
// state, a health endpoint for whatever supervises the listener, and the
// report archive. It only reads, except for the two operator actions
// (trigger a compose, retry a failed workflow). It serves no internals: no
// filesystem paths, lock files or mail ledgers.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener/event"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
)

// Workflows is what the API needs of the workflow engine
// (workflow.Engine is one).
type Workflows interface {
	List(ctx context.Context) ([]workflow.Workflow, error)
	Get(ctx context.Context, composeID string) (workflow.Workflow, error)
	Submit(ctx context.Context, e event.Event) error
	Retry(ctx context.Context, composeID string) error
	Stats(ctx context.Context) (workflow.Stats, error)
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
	// /reports/; empty serves none.
	ReportsDir string
	// MaxSilence makes /healthz fail when no event arrived for longer
	// (zero: never).
	MaxSilence time.Duration
	Checks     []Check
	Logger     *slog.Logger
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
	h := &handler{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /api/v1/workflows", h.list)
	mux.HandleFunc("GET /api/v1/workflows/{id}", h.get)
	mux.HandleFunc("POST /api/v1/workflows/{id}", h.trigger)
	mux.HandleFunc("POST /api/v1/workflows/{id}/retry", h.retry)
	mux.HandleFunc("GET /api/v1/stats", h.stats)
	if o.ReportsDir != "" {
		mux.Handle("GET /reports/", http.StripPrefix("/reports", reportFiles{dir: o.ReportsDir, log: o.Logger}))
	}
	return mux
}

type handler struct{ o Options }

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
	case errors.Is(err, workflow.ErrNotFound):
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
