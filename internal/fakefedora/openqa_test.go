package fakefedora

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests talk to the fake over HTTP with hand-made requests, signed
// here from docs/protocols.md, section (e), so the fake is checked against
// the protocol and not against the openqa client.

const fkKey, fkSecret = "KEY1", "SECRET1"

func newTestOpenQA(t *testing.T, opts OpenQAOptions) *OpenQA {
	t.Helper()
	opts.Keys = append(opts.Keys, OpenQAKey{Key: fkKey, Secret: fkSecret, Operator: true}, OpenQAKey{Key: "plain", Secret: "user"})
	s := NewOpenQA(opts)
	t.Cleanup(s.Close)
	return s
}

type signing struct {
	key, secret string
	ts          string
	upper       bool
}

func sign(r *http.Request, sg signing) {
	if sg.key == "" {
		return
	}
	m := hmac.New(sha1.New, []byte(sg.secret))
	m.Write([]byte(r.URL.RequestURI() + sg.ts))
	h := hex.EncodeToString(m.Sum(nil))
	if sg.upper {
		h = strings.ToUpper(h)
	}
	r.Header.Set("X-API-Key", sg.key)
	r.Header.Set("X-API-Microtime", sg.ts)
	r.Header.Set("X-API-Hash", h)
}

func op() signing {
	return signing{key: fkKey, secret: fkSecret, ts: strconv.FormatInt(time.Now().Unix(), 10)}
}

type answer struct {
	status int
	ctype  string
	body   string
	header http.Header
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("not JSON (%s): %s", a.ctype, a.body)
	}
	return m
}

func do(t *testing.T, s *OpenQA, method, target string, form url.Values, sg signing) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequest(method, s.URL()+target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	sign(r, sg)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b), resp.Header}
}

func product(flavor, build string) url.Values {
	return url.Values{"DISTRI": {"fedora"}, "VERSION": {"Rawhide"}, "FLAVOR": {flavor}, "ARCH": {"x86_64"},
		"BUILD": {build}, "ISO_URL": {"https://kojipkgs.fedoraproject.org/x/" + flavor + ".iso"},
		"_OBSOLETE": {"1"}, "_ONLY_OBSOLETE_SAME_BUILD": {"1"}}
}

func TestOpenQAAuthentication(t *testing.T) {
	now := time.Now()
	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	tests := []struct {
		name   string
		sg     signing
		status int
		reason string
	}{
		{"integer seconds", signing{key: fkKey, secret: fkSecret, ts: ts(0)}, 200, ""},
		{"float seconds as the Python client sends", signing{key: fkKey, secret: fkSecret, ts: strconv.FormatFloat(float64(now.UnixMicro())/1e6, 'f', 6, 64)}, 200, ""},
		{"a timestamp in the future", signing{key: fkKey, secret: fkSecret, ts: ts(time.Hour)}, 200, ""},
		{"no api key", signing{}, 403, "no api key"},
		{"unknown key", signing{key: "nobody", secret: fkSecret, ts: ts(0)}, 403, "Not authorized"},
		{"stale timestamp", signing{key: fkKey, secret: fkSecret, ts: ts(-301 * time.Second)}, 403, "timestamp mismatch"},
		{"wrong secret", signing{key: fkKey, secret: "wrong", ts: ts(0)}, 403, "unknown error (wrong secret?)"},
		{"upper-case hex", signing{key: fkKey, secret: fkSecret, ts: ts(0), upper: true}, 403, "unknown error (wrong secret?)"},
		{"not an operator", signing{key: "plain", secret: "user", ts: ts(0)}, 403, "Administrator level required"},
	}
	s := newTestOpenQA(t, OpenQAOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, s, "POST", "/api/v1/isos", product("Server-dvd-iso", "B"), tt.sg)
			if a.status != tt.status {
				t.Fatalf("HTTP %d %s", a.status, a.body)
			}
			if tt.reason == "" {
				return
			}
			m := a.json(t)
			if !strings.HasPrefix(m["error"].(string), tt.reason) || m["error_status"] != 403.0 {
				t.Errorf("body %s, want error %q", a.body, tt.reason)
			}
		})
	}
	t.Run("GET /jobs is maybe_auth: a bad signature is anonymous", func(t *testing.T) {
		if a := do(t, s, "GET", "/api/v1/jobs?build=B", nil, signing{key: fkKey, secret: "wrong", ts: ts(0)}); a.status != 200 {
			t.Errorf("HTTP %d", a.status)
		}
	})
}

func TestOpenQAPostAnswers(t *testing.T) {
	tests := []struct {
		name   string
		target string
		form   url.Values
		status int
		ctype  string
		want   string
	}{
		{"missing parameters: 400 text", "/api/v1/isos", url.Values{"DISTRI": {"fedora"}, "VERSION": {"Rawhide"}}, 400, "text/plain", "Error: missing parameters: FLAVOR ARCH"},
		{"unknown product: 200 with error and count 0", "/api/v1/isos", product("Bogus-iso", "B"), 200, "application/json",
			`"count":0,"error":"no products found for fedora-Bogus-iso-x86_64","failed":{},"ids":[]`},
		{"asset host not passlisted: 403 text", "/api/v1/isos", url.Values{"DISTRI": {"fedora"}, "VERSION": {"Rawhide"}, "FLAVOR": {"Server-dvd-iso"}, "ARCH": {"x86_64"}, "ISO_URL": {"http://elsewhere.example/a.iso"}},
			403, "text/plain", "Asset download requested from non-passlisted host elsewhere.example."},
		{"lower-case names in the query string are upper-cased", "/api/v1/isos?distri=fedora&version=Rawhide&flavor=Server-dvd-iso&arch=x86_64&build=B", url.Values{}, 200, "application/json",
			`"count":4,"failed":[],"ids":[1,2,3,4]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestOpenQA(t, OpenQAOptions{DownloadDomains: []string{"fedoraproject.org"}})
			a := do(t, s, "POST", tt.target, tt.form, op())
			if a.status != tt.status || !strings.HasPrefix(a.ctype, tt.ctype) || !strings.Contains(a.body, tt.want) {
				t.Errorf("HTTP %d %s %s; want %d %s containing %s", a.status, a.ctype, a.body, tt.status, tt.ctype, tt.want)
			}
			if p := s.Posts(); len(p) != 1 || p[0].Status != tt.status {
				t.Errorf("posts recorded: %+v", p)
			}
		})
	}
}

func TestOpenQARepostingObsoletesPendingJobs(t *testing.T) {
	s := newTestOpenQA(t, OpenQAOptions{})
	do(t, s, "POST", "/api/v1/isos", product("Server-dvd-iso", "A"), op()) // jobs 1-4, another build
	do(t, s, "POST", "/api/v1/isos", product("Server-dvd-iso", "B"), op()) // jobs 5-8
	s.Advance()                                                            // all running
	if err := s.Cancel(8); err != nil {
		t.Fatal(err)
	}
	a := do(t, s, "POST", "/api/v1/isos", product("Server-dvd-iso", "B"), op()) // jobs 9-12
	if !strings.Contains(a.body, `"ids":[9,10,11,12]`) {
		t.Fatalf("%s", a.body)
	}
	for _, j := range s.Jobs() {
		var want string
		switch {
		case j.ID <= 4:
			want = "running/none" // another build: untouched
		case j.ID <= 7:
			want = "cancelled/obsoleted"
		case j.ID == 8:
			want = "cancelled/user_cancelled"
		default:
			want = "scheduled/none"
		}
		if got := j.State + "/" + j.Result; got != want {
			t.Errorf("job %d (%s): %s, want %s", j.ID, j.Build(), got, want)
		}
	}
}

func TestOpenQAJobsPaging(t *testing.T) {
	s := newTestOpenQA(t, OpenQAOptions{PageLimit: 5})
	for _, f := range []string{"Server-dvd-iso", "Server-boot-iso", "Everything-boot-iso", "Workstation-live-iso", "KDE-live-iso"} {
		do(t, s, "POST", "/api/v1/isos", product(f, "B"), op()) // 4+2+2+3+2 = 13 jobs
	}
	linkRe := regexp.MustCompile(`<([^>]+)>; rel="(\w+)"`)
	var ids []int64
	target := "/api/v1/jobs?build=B"
	for pages := 0; target != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		a := do(t, s, "GET", target, nil, signing{})
		var body struct {
			Jobs []struct {
				ID int64 `json:"id"`
			} `json:"jobs"`
		}
		if err := json.Unmarshal([]byte(a.body), &body); err != nil {
			t.Fatal(err)
		}
		var page []string
		for _, j := range body.Jobs {
			ids = append(ids, j.ID)
			page = append(page, strconv.FormatInt(j.ID, 10))
		}
		if !slices.IsSorted(page) {
			t.Errorf("page %v not sorted as strings", page)
		}
		links := map[string]string{}
		for _, m := range linkRe.FindAllStringSubmatch(a.header.Get("Link"), -1) {
			links[m[2]] = m[1]
		}
		if !strings.HasPrefix(links["first"], s.URL()+"/api/v1/jobs?") || !strings.Contains(links["first"], "limit=5") {
			t.Errorf("Link %q: want an absolute rel=first with the limit", a.header.Get("Link"))
		}
		if pages > 0 && links["prev"] == "" {
			t.Errorf("page %d has no rel=prev", pages)
		}
		target = ""
		if n := links["next"]; n != "" {
			target = strings.TrimPrefix(n, s.URL())
		}
	}
	slices.Sort(ids)
	if len(ids) != 13 || ids[0] != 1 || ids[12] != 13 || slices.Compact(ids) == nil {
		t.Errorf("ids %v", ids)
	}
	// The first page of 5 holds the newest jobs, sorted as strings.
	a := do(t, s, "GET", "/api/v1/jobs?build=B&limit=5", nil, signing{})
	if !regexp.MustCompile(`"id":10,.*"id":11,.*"id":12,.*"id":13,.*"id":9,`).MatchString(a.body) {
		t.Errorf("first page order: %s", a.body)
	}
}

func TestOpenQAJobsFilters(t *testing.T) {
	s := newTestOpenQA(t, OpenQAOptions{})
	do(t, s, "POST", "/api/v1/isos", product("Server-dvd-iso", "B"), op())  // 1-4
	do(t, s, "POST", "/api/v1/isos", product("Server-boot-iso", "B"), op()) // 5-6
	do(t, s, "POST", "/api/v1/isos", product("Server-boot-iso", "C"), op()) // 7-8
	s.SetOutcome("B", "Server-boot-iso", "", "install_default", "incomplete", "passed")
	s.Settle() // 5 and 6 (install_default@64bit and @uefi) are cloned as 9, 10
	ids := func(target string) []int64 {
		a := do(t, s, "GET", target, nil, signing{})
		var body struct {
			Jobs []struct {
				ID int64 `json:"id"`
			} `json:"jobs"`
		}
		if err := json.Unmarshal([]byte(a.body), &body); err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, j := range body.Jobs {
			out = append(out, j.ID)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		target string
		want   []int64
	}{
		{"/api/v1/jobs?build=B&flavor=Server-boot-iso", []int64{5, 6, 9, 10}},
		{"/api/v1/jobs?build=B&flavor=Server-boot-iso&scope=current", []int64{9, 10}},
		{"/api/v1/jobs?build=B&result=incomplete", []int64{5, 6}},
		{"/api/v1/jobs?build=B&test=install_default&machine=uefi", []int64{2, 6, 10}},
		{"/api/v1/jobs?build=C&ids=1,2", []int64{1, 2}}, // ids win over the other filters
		{"/api/v1/jobs?build=B&hdd_2=ignored", []int64{1, 2, 3, 4, 5, 6, 9, 10}},
		{"/api/v1/jobs?build=B&latest=1", []int64{1, 2, 3, 4, 9, 10}},
		{"/api/v1/jobs?build=B&latest=1&limit=3", []int64{9, 10}}, // rows 10, 9, 6 cut before de-duplication: Server-dvd-iso is lost
		{"/api/v1/jobs?iso=Server-boot-iso.iso&build=C", []int64{7, 8}},
	}
	for _, tt := range tests {
		if got := ids(tt.target); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.target, got, tt.want)
		}
	}
	if a := do(t, s, "GET", "/api/v1/jobs?build=B&latest=1", nil, signing{}); a.header.Get("Link") != "" {
		t.Errorf("latest=1 sent a Link header")
	}
	a := do(t, s, "GET", "/api/v1/jobs/5?follow=1", nil, signing{})
	if m := a.json(t); m["followed_id"] != 9.0 || m["job"].(map[string]any)["origin_id"] != 5.0 {
		t.Errorf("follow: %s", a.body)
	}
	a = do(t, s, "GET", "/api/v1/jobs/5", nil, signing{})
	if j := a.json(t)["job"].(map[string]any); j["clone_id"] != 9.0 || j["result"] != "incomplete" || j["settings"].(map[string]any)["ISO"] != "Server-boot-iso.iso" {
		t.Errorf("job 5: %s", a.body)
	}
	if a := do(t, s, "GET", "/api/v1/jobs/99", nil, signing{}); a.status != 404 {
		t.Errorf("unknown job: HTTP %d", a.status)
	}
}

func TestOpenQAAdvanceAndClones(t *testing.T) {
	tests := []struct {
		name     string
		opts     OpenQAOptions
		results  []string
		want     []string // state/result of each job in the chain, by id
		advances int      // Advance calls until nothing changes
	}{
		{"pass", OpenQAOptions{}, []string{"passed"}, []string{"done/passed"}, 3},
		{"fail", OpenQAOptions{}, []string{"failed"}, []string{"done/failed"}, 3},
		{"softfail", OpenQAOptions{}, []string{"softfailed"}, []string{"done/softfailed"}, 3},
		{"incomplete then pass", OpenQAOptions{}, []string{"incomplete", "passed"}, []string{"done/incomplete", "done/passed"}, 5},
		{"incomplete forever stops at the clone limit", OpenQAOptions{AutoCloneLimit: 2}, []string{"incomplete"}, []string{"done/incomplete", "done/incomplete", "done/incomplete"}, 7},
		{"no auto-clone", OpenQAOptions{AutoCloneLimit: -1}, []string{"incomplete"}, []string{"done/incomplete"}, 3},
		{"delayed auto-clone", OpenQAOptions{DelayedAutoClone: true}, []string{"incomplete", "passed"}, []string{"done/incomplete", "done/passed"}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Templates = []OpenQATemplate{{Flavor: "F", Arch: "x86_64", Tests: []string{"t"}}}
			s := newTestOpenQA(t, tt.opts)
			s.SetOutcome("B", "F", "x86_64", "t", tt.results...)
			form := product("F", "B")
			do(t, s, "POST", "/api/v1/isos", form, op())
			if n := s.Settle(); n != tt.advances {
				t.Errorf("%d advances, want %d", n, tt.advances)
			}
			var got []string
			for i, j := range s.Jobs() {
				got = append(got, j.State+"/"+j.Result)
				if i > 0 && j.OriginID != int64(i) {
					t.Errorf("job %d origin %d", j.ID, j.OriginID)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("chain %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOpenQAOutcomeFunc(t *testing.T) {
	s := newTestOpenQA(t, OpenQAOptions{})
	s.SetOutcome("", "", "", "", "failed")
	s.SetOutcomeFunc(func(j OpenQAJob, attempt int) string {
		if j.Machine == "uefi" {
			return "softfailed"
		}
		return "" // fall back to the rules
	})
	do(t, s, "POST", "/api/v1/isos", product("Server-boot-iso", "B"), op())
	s.Settle()
	for _, j := range s.Jobs() {
		if want := map[string]string{"uefi": "softfailed", "64bit": "failed"}[j.Machine]; j.Result != want {
			t.Errorf("%s: %s, want %s", j.Name, j.Result, want)
		}
	}
}

func TestOpenQAFaults(t *testing.T) {
	s := newTestOpenQA(t, OpenQAOptions{})
	s.InjectFault(OpenQAFault{Method: "GET", Path: "/api/v1/jobs", Status: 502, Skip: 1, Times: 2})
	var got []int
	for range 4 {
		got = append(got, do(t, s, "GET", "/api/v1/jobs", nil, signing{}).status)
	}
	if !slices.Equal(got, []int{200, 502, 502, 200}) {
		t.Errorf("statuses %v", got)
	}
	s.InjectFault(OpenQAFault{Method: "POST", Path: "/api/v1/isos", AfterEffect: true, Status: 504})
	if a := do(t, s, "POST", "/api/v1/isos", product("Server-dvd-iso", "B"), op()); a.status != 504 || len(s.Jobs()) != 4 {
		t.Errorf("HTTP %d, %d jobs: want 504 after the jobs were made", a.status, len(s.Jobs()))
	}
	if s.Requests("GET", "/api/v1/jobs") != 4 || s.Requests("POST", "/api/v1/isos") != 1 || s.TotalRequests() != 5 {
		t.Errorf("counters: %d %d %d", s.Requests("GET", "/api/v1/jobs"), s.Requests("POST", "/api/v1/isos"), s.TotalRequests())
	}
}

func TestOpenQARestartAndCancelRoutes(t *testing.T) {
	s := newTestOpenQA(t, OpenQAOptions{})
	do(t, s, "POST", "/api/v1/isos", product("Server-boot-iso", "B"), op()) // 1, 2
	if a := do(t, s, "POST", "/api/v1/jobs/1/restart", url.Values{}, signing{}); a.status != 403 {
		t.Errorf("restart without a key: HTTP %d", a.status)
	}
	// As openQA 4.6 answers (docs/protocols.md, section (h)).
	for _, tt := range []struct {
		what, method, path, want string
	}{
		{"a job still scheduled restarts as nothing", "POST", "/api/v1/jobs/1/restart", `{"result":[],"test_url":[]}`},
		{"an unknown job too", "POST", "/api/v1/jobs/99/restart", `{"result":[],"test_url":[]}`},
		{"cancel", "POST", "/api/v1/jobs/2/cancel", `{"result":null}`},
		{"cancel again", "POST", "/api/v1/jobs/2/cancel", `{"result":null}`},
		{"a cancelled job restarts like a failed one", "POST", "/api/v1/jobs/2/restart", `{"result":[{"2":3}],"test_url":[{"2":"/tests/3"}]}`},
		{"once", "POST", "/api/v1/jobs/2/restart", `{"errors":["Specified job 2 has already been cloned as 3"],"result":[],"test_url":[]}`},
	} {
		if a := do(t, s, tt.method, tt.path, url.Values{}, op()); a.status != 200 || strings.TrimSpace(a.body) != tt.want {
			t.Errorf("%s: HTTP %d %s, want %s", tt.what, a.status, a.body, tt.want)
		}
	}
	j1, _ := s.Job(1)
	j2, _ := s.Job(2)
	j3, _ := s.Job(3)
	if j1.CloneID != 0 || j1.State != "scheduled" || j2.CloneID != 3 || j2.Result != "user_cancelled" || j3.OriginID != 2 || j3.State != "scheduled" {
		t.Errorf("%+v\n%+v\n%+v", j1, j2, j3)
	}
}
