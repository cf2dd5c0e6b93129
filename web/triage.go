package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/composeci/composeci/triage"
)

// knownJSON is a registry entry as the API shows it.
type knownJSON struct {
	triage.Entry
	Expired bool `json:"expired"`
}

func (h *handler) apiKnownList(w http.ResponseWriter, r *http.Request) {
	if h.o.Known == nil {
		h.writeJSON(w, http.StatusNotFound, map[string]string{"error": "this server keeps no registry of known issues"})
		return
	}
	entries, err := h.o.Known.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := h.o.Now()
	out := make([]knownJSON, 0, len(entries))
	for _, e := range entries {
		out = append(out, knownJSON{Entry: e, Expired: e.Expired(now)})
	}
	h.writeJSON(w, http.StatusOK, out)
}

func (h *handler) apiKnownHistory(w http.ResponseWriter, r *http.Request) {
	if h.o.Known == nil {
		h.writeJSON(w, http.StatusNotFound, map[string]string{"error": "this server keeps no registry of known issues"})
		return
	}
	history, err := h.o.Known.History(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if history == nil {
		history = []triage.Change{}
	}
	h.writeJSON(w, http.StatusOK, history)
}

// knownRequest is the body of POST /api/v1/known-issues.
type knownRequest struct {
	Test    string `json:"test"`
	Flavor  string `json:"flavor"`
	Arch    string `json:"arch"`
	Module  string `json:"module"`
	Reason  string `json:"reason"`
	Bug     string `json:"bug"`
	Expires string `json:"expires"` // RFC 3339, a date (2026-12-31) or a duration from now (720h)
	By      string `json:"by"`
}

func (h *handler) apiKnownAdd(w http.ResponseWriter, r *http.Request) {
	if h.o.Known == nil {
		h.writeJSON(w, http.StatusNotFound, map[string]string{"error": "this server keeps no registry of known issues"})
		return
	}
	var req knownRequest
	if !h.decodeBody(w, r, &req) {
		return
	}
	expires, err := triage.ParseExpiry(req.Expires, h.o.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	e, err := h.o.Known.Add(r.Context(), triage.Entry{Test: req.Test, Flavor: req.Flavor, Arch: req.Arch, Module: req.Module,
		Reason: req.Reason, Bug: req.Bug, Expires: expires}, who(req.By))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusCreated, knownJSON{Entry: e, Expired: e.Expired(h.o.Now())})
}

func (h *handler) apiKnownRemove(w http.ResponseWriter, r *http.Request) {
	if h.o.Known == nil {
		h.writeJSON(w, http.StatusNotFound, map[string]string{"error": "this server keeps no registry of known issues"})
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.badRequest(w, fmt.Sprintf("known issue %q: want its number", r.PathValue("id")))
		return
	}
	e, err := h.o.Known.Remove(r.Context(), id, who(r.URL.Query().Get("by")))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, knownJSON{Entry: e, Expired: e.Expired(h.o.Now())})
}

// rerunRequest is the body of POST /api/v1/composes/<ID>/rerun.
type rerunRequest struct {
	Scope  string `json:"scope"`
	JobID  int64  `json:"job_id"`
	Image  string `json:"image"`
	Test   string `json:"test"`
	Reason string `json:"reason"`
	By     string `json:"by"`
	DryRun bool   `json:"dry_run"`
}

func (h *handler) apiRerun(w http.ResponseWriter, r *http.Request) {
	id, err := composeIDOf(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if h.o.Rerun == nil {
		h.writeJSON(w, http.StatusNotFound, map[string]string{"error": "this server does not re-run jobs (no openQA)"})
		return
	}
	var req rerunRequest
	if !h.decodeBody(w, r, &req) {
		return
	}
	res, err := h.o.Rerun(r.Context(), triage.Request{ComposeID: id.String(), Scope: req.Scope, JobID: req.JobID, Image: req.Image,
		Test: req.Test, Reason: req.Reason, By: who(req.By), DryRun: req.DryRun})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, res)
}

// decodeBody reads a JSON request body of at most 64 KiB, refusing unknown
// fields; it answers 400 itself when the body is bad.
func (h *handler) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		h.badRequest(w, "request body: "+err.Error())
		return false
	}
	return true
}

// who names the author of a change made through the API: the "by" the
// request gives (people's logins), else "api".
func who(by string) string {
	by = strings.TrimSpace(by)
	if by == "" || len(by) > 64 || strings.ContainsFunc(by, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "api"
	}
	return by
}
