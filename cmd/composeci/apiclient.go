package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/redact"
	"github.com/composeci/composeci/triage"
)

// apiClient asks a running composeci service (its --http) through the JSON
// API of docs/api.md: what `known` and `rerun` do with --server. Writes are
// sent once, never retried blindly: adding a known issue twice would
// register it twice.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

func newAPIClient(server, token string) (*apiClient, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, withCode(exitError, fmt.Errorf("--server %q: want the service's URL, such as http://127.0.0.1:8089", server))
	}
	return &apiClient{base: u, token: token, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// errAPI is an answer of the service other than success.
var errAPI = errors.New("the service refused")

// do sends a request and decodes the JSON answer into out.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" && method != http.MethodGet {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("asking %s: %w", redact.URL(c.base.String()), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", redact.URL(c.base.String()), err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		switch resp.StatusCode {
		case http.StatusBadRequest:
			return fmt.Errorf("%w: %s", fedfind.ErrInvalidInput, msg)
		case http.StatusNotFound:
			return fmt.Errorf("%w (%s %s): %s", errAPI, method, path, msg)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %s (check --api-token-file)", errAPI, msg)
		}
		return fmt.Errorf("%w: %s %s: %s: %s", errAPI, method, path, resp.Status, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// registry is the service's registry of known issues, through its API.
func (c *apiClient) registry() triage.Registry { return apiRegistry{c} }

type apiRegistry struct{ c *apiClient }

func (r apiRegistry) List(ctx context.Context) ([]triage.Entry, error) {
	var out []triage.Entry
	return out, r.c.do(ctx, http.MethodGet, "/api/v1/known-issues", nil, &out)
}

func (r apiRegistry) Add(ctx context.Context, e triage.Entry, by string) (triage.Entry, error) {
	body := map[string]string{"test": e.Test, "flavor": e.Flavor, "arch": e.Arch, "module": e.Module,
		"reason": e.Reason, "bug": e.Bug, "by": by}
	if !e.Expires.IsZero() {
		body["expires"] = e.Expires.UTC().Format(time.RFC3339)
	}
	var out triage.Entry
	return out, r.c.do(ctx, http.MethodPost, "/api/v1/known-issues", body, &out)
}

func (r apiRegistry) Remove(ctx context.Context, id int64, by string) (triage.Entry, error) {
	var out triage.Entry
	err := r.c.do(ctx, http.MethodDelete, "/api/v1/known-issues/"+strconv.FormatInt(id, 10)+"?by="+url.QueryEscape(by), nil, &out)
	if errors.Is(err, errAPI) && strings.Contains(err.Error(), "no such known issue") {
		return out, fmt.Errorf("%w: %d", triage.ErrNotFound, id)
	}
	return out, err
}

func (r apiRegistry) History(ctx context.Context) ([]triage.Change, error) {
	var out []triage.Change
	return out, r.c.do(ctx, http.MethodGet, "/api/v1/known-issues/history", nil, &out)
}

// rerun asks the service to re-run jobs of a compose.
func (c *apiClient) rerun(ctx context.Context, compose string, req triage.Request) (triage.Result, error) {
	body := map[string]any{"scope": req.Scope, "job_id": req.JobID, "image": req.Image, "test": req.Test,
		"reason": req.Reason, "by": req.By, "dry_run": req.DryRun}
	var out triage.Result
	return out, c.do(ctx, http.MethodPost, "/api/v1/composes/"+url.PathEscape(compose)+"/rerun", body, &out)
}
