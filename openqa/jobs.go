package openqa

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// JobQuery filters GET /api/v1/jobs. Empty fields do not filter. openQA
// ignores parameters it does not know (hdd_2, for one), so only the ones it
// honours are offered.
type JobQuery struct {
	Build, Distri, Version, Flavor, Arch, Test, Machine, ISO string
	// States and Results keep jobs in any of the given ones.
	States, Results []string
	// Scope "current" drops jobs that were cloned; "relevant" also drops
	// obsoleted ones.
	Scope string
}

func (q JobQuery) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("build", q.Build)
	set("distri", q.Distri)
	set("version", q.Version)
	set("flavor", q.Flavor)
	set("arch", q.Arch)
	set("test", q.Test)
	set("machine", q.Machine)
	set("iso", q.ISO)
	set("scope", q.Scope)
	if len(q.States) > 0 {
		v.Set("state", strings.Join(q.States, ","))
	}
	if len(q.Results) > 0 {
		v.Set("result", strings.Join(q.Results, ","))
	}
	return v
}

// maxPages stops a server whose Link headers loop.
const maxPages = 10000

// Jobs returns every job that matches q, reading all pages. It pages with
// limit and offset and follows the Link header's rel="next" (an absolute
// URL, or one relative to the page, of which only the path and query are
// used, so a proxy that rewrites the host cannot send signed requests
// elsewhere). It does not use latest=1, which openQA cuts at the row limit
// before de-duplicating and never pages. Jobs are returned by id, ascending: openQA sorts a page's jobs
// by id as strings, so its order means nothing.
func (c *Client) Jobs(ctx context.Context, q JobQuery) ([]Job, error) {
	v := q.values()
	v.Set("limit", strconv.Itoa(c.opts.PageSize))
	v.Set("offset", "0")
	next := c.apiURL + "/jobs?" + v.Encode()
	seen := map[int64]bool{}
	visited := map[string]bool{}
	var out []Job
	for page := 0; next != ""; page++ {
		if page >= maxPages || visited[next] {
			return nil, fmt.Errorf("openqa: GET /api/v1/jobs: paging does not end (at %s)", next)
		}
		visited[next] = true
		var body struct {
			Jobs []Job `json:"jobs"`
		}
		hdr, err := c.getURL(ctx, next, &body)
		if err != nil {
			return nil, err
		}
		// A job created between two pages pushes older ones down, so one
		// may show up twice; keep the first.
		for _, j := range body.Jobs {
			if !seen[j.ID] {
				seen[j.ID] = true
				j.URL = c.JobURL(j.ID)
				out = append(out, j)
			}
		}
		next, err = c.nextPage(hdr, next, len(body.Jobs))
		if err != nil {
			return nil, err
		}
	}
	sortJobs(out)
	return out, nil
}

// nextPage finds the next page's URL: the Link header's rel="next" when the
// server sends Link headers, else (an older server) the next offset while
// pages come back full.
func (c *Client) nextPage(hdr http.Header, cur string, n int) (string, error) {
	if links := hdr.Values("Link"); len(links) > 0 {
		next := linkRel(strings.Join(links, ","), "next")
		if next == "" {
			return "", nil
		}
		u, err := url.Parse(next)
		if err != nil {
			return "", fmt.Errorf("openqa: bad Link rel=next %q: %w", next, err)
		}
		// A relative reference is resolved against the page it came
		// with; then only its path and query are kept, and they must be
		// a path ("x:.evil/api" or "api/v1" would otherwise change the
		// host when appended to the base URL).
		cu, err := url.Parse(cur)
		if err != nil {
			return "", err
		}
		u = cu.ResolveReference(u)
		if u.Opaque != "" || !strings.HasPrefix(u.EscapedPath(), "/") {
			return "", fmt.Errorf("openqa: bad Link rel=next %q: not a path on the server", next)
		}
		return c.base.String() + u.RequestURI(), nil
	}
	if n < c.opts.PageSize || n == 0 {
		return "", nil
	}
	u, err := url.Parse(cur)
	if err != nil {
		return "", err
	}
	q := u.Query()
	off, _ := strconv.Atoi(q.Get("offset"))
	q.Set("offset", strconv.Itoa(off+n))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// linkPart and relParam read RFC 8288 Link headers. Regexps are compiled
// on first use, not at start-up (docs/conventions.md); a compiled one is
// immutable.
var linkPart = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<([^>]*)>\s*((?:;\s*[^;,]*)*)`) })
var relParam = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)rel\s*=\s*"?([^";,]*)"?`) })

// linkRel returns the URL of the RFC 8288 Link header entry with relation
// rel, or "".
func linkRel(header, rel string) string {
	for _, m := range linkPart().FindAllStringSubmatch(header, -1) {
		for _, r := range relParam().FindAllStringSubmatch(m[2], -1) {
			for _, name := range strings.Fields(r[1]) {
				if strings.EqualFold(name, rel) {
					return m[1]
				}
			}
		}
	}
	return ""
}

// Job returns one job. With follow it follows the clone chain to the newest
// job, as ?follow=1 does.
func (c *Client) Job(ctx context.Context, id int64, follow bool) (Job, error) {
	q := url.Values{}
	if follow {
		q.Set("follow", "1")
	}
	var body struct {
		Job Job `json:"job"`
	}
	if err := c.Get(ctx, "jobs/"+strconv.FormatInt(id, 10), q, &body); err != nil {
		return Job{}, err
	}
	body.Job.URL = c.JobURL(body.Job.ID)
	return body.Job, nil
}

// BuildJobs returns every job of a BUILD, clones and obsoleted jobs
// included, by id.
func (c *Client) BuildJobs(ctx context.Context, build string) ([]Job, error) {
	return c.Jobs(ctx, JobQuery{Build: build})
}

// ISOsResult is openQA's answer to POST /api/v1/isos.
type ISOsResult struct {
	ScheduledProductID int64   `json:"scheduled_product_id"`
	Count              int     `json:"count"`
	IDs                []int64 `json:"ids"`
	// Failed lists jobs that could not be created; openQA sends a list on
	// success and an object on error, so it is kept raw.
	Failed any `json:"failed,omitempty"`
}

// PostISOs schedules one product with POST /api/v1/isos, once. An answer of
// 200 with an "error" or a count of 0 is an *APIError matching ErrNoJobs.
// Use Schedule for idempotent scheduling; this is the raw call.
func (c *Client) PostISOs(ctx context.Context, params map[string]string) (ISOsResult, error) {
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	var res ISOsResult
	if err := c.Post(ctx, "isos", form, &res); err != nil {
		return ISOsResult{}, err
	}
	if res.Count == 0 || len(res.IDs) == 0 {
		return res, &APIError{Method: http.MethodPost, Path: "/api/v1/isos", StatusCode: http.StatusOK,
			Message: "no jobs created (count 0)", JSON: true}
	}
	if f, ok := res.Failed.([]any); ok && len(f) > 0 {
		// Some of the product's jobs were created, others not (a
		// template openQA could not instantiate): the product counts as
		// scheduled, and the operator is told what was left out.
		c.log.Warn("openqa: some jobs of the product could not be created",
			"flavor", params["FLAVOR"], "arch", params["ARCH"], "build", params["BUILD"], "created", len(res.IDs), "failed", f)
	}
	return res, nil
}
