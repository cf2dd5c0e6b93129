package fakefedora

// The simulated openQA server. It speaks openQA's REST API over real HTTP
// (JSON and form bodies, HMAC authentication, paging with Link headers) as
// docs/protocols.md, sections (e) and (h), describe a 4.6 server, so a
// client tested against it is tested against the protocol, not against a Go
// interface. It never imports the openqa package: if the client and the fake
// shared code, a misunderstanding of the protocol would pass in both.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OpenQA job states and results, as openQA names them.
const (
	oqScheduled = "scheduled"
	oqRunning   = "running"
	oqDone      = "done"
	oqCancelled = "cancelled"

	oqNone          = "none"
	oqPassed        = "passed"
	oqIncomplete    = "incomplete"
	oqObsoleted     = "obsoleted"
	oqUserCancelled = "user_cancelled"
	oqUserRestarted = "user_restarted"
)

// Defaults of the fake, chosen to match what a real openQA 4.6 did when
// observed (docs/protocols.md, section (h)).
const (
	// OpenQADefaultLimit is the page size of GET /api/v1/jobs when the
	// client names none: 10000, as observed on 4.6 (the docs say 1000).
	OpenQADefaultLimit = 10000
	// OpenQAMaxLimit is the largest page GET /api/v1/jobs hands out.
	OpenQAMaxLimit = 10000
	// openQATimeTolerance is api_hmac_time_tolerance's default.
	openQATimeTolerance = 300 * time.Second
)

// OpenQAKey is an API key the fake accepts. Operator keys may schedule; other
// keys are refused on operator routes with "Administrator level required",
// as openQA refuses a plain user.
type OpenQAKey struct {
	Key, Secret string
	Operator    bool
}

// OpenQATemplate is a job template: posting DISTRI/VERSION/FLAVOR/ARCH that
// match it creates one job per test. Version "*" (or "") matches any version,
// as openQA falls back to products of version "*". A test is "name" or
// "name@machine"; the machine defaults to 64bit (x86_64), aarch64 or ppc64le.
type OpenQATemplate struct {
	Distri  string // default "fedora"
	Version string // default "*"
	Flavor  string
	Arch    string
	Tests   []string
	GroupID int64  // default 1
	Group   string // default "fedora"
}

// OpenQAOptions configures a fake openQA. The zero value is usable.
type OpenQAOptions struct {
	// Keys are the API keys accepted. AddKey adds more.
	Keys []OpenQAKey
	// Templates are the job templates. Nil means FedoraOpenQATemplates().
	Templates []OpenQATemplate
	// PageLimit is the default limit of GET /api/v1/jobs (0:
	// OpenQADefaultLimit). Tests set it small to exercise paging.
	PageLimit int
	// DownloadDomains, when set, is the asset download allow-list: a *_URL
	// parameter on another host is refused with 403 text/plain.
	DownloadDomains []string
	// Now is the server's clock for HMAC timestamps and job times. Default
	// time.Now.
	Now func() time.Time
	// JobClock, when set, stamps job times instead of Now (HMAC still checks
	// against Now), so a demo can run jobs for simulated minutes in
	// milliseconds while clients sign with the real time.
	JobClock func() time.Time
	// AutoCloneLimit bounds how many times an incomplete job is cloned
	// automatically along one chain (openQA's auto_clone_limit). 0 means 2;
	// negative disables auto-cloning.
	AutoCloneLimit int
	// DelayedAutoClone makes the auto-clone of an incomplete job appear one
	// Advance after the job is done, reproducing openQA's race where a done
	// job still shows clone_id null for a while.
	DelayedAutoClone bool
}

// OpenQAJob is one job of the fake, as a test sees it.
type OpenQAJob struct {
	ID        int64
	Name      string
	Test      string
	Machine   string
	State     string
	Result    string
	CloneID   int64 // 0: not cloned
	OriginID  int64 // 0: not a clone
	Priority  int
	GroupID   int64
	Group     string
	TStarted  time.Time
	TFinished time.Time
	Settings  map[string]string
	// ProductID is the scheduled product that created the job.
	ProductID int64

	attempt  int  // 0 for a job posted, n for the n-th clone in a chain
	cloneDue bool // an auto-clone waits for the next Advance
}

// Flavor, Arch and Build return the job's settings of that name.
func (j OpenQAJob) Flavor() string { return j.Settings["FLAVOR"] }

// Arch returns the job's ARCH setting.
func (j OpenQAJob) Arch() string { return j.Settings["ARCH"] }

// Build returns the job's BUILD setting.
func (j OpenQAJob) Build() string { return j.Settings["BUILD"] }

func (j *OpenQAJob) pending() bool { return j.State != oqDone && j.State != oqCancelled }

// OpenQAPost is one POST /api/v1/isos the fake received, whatever its answer.
type OpenQAPost struct {
	// Params are the parameters as openQA reads them: names upper-cased
	// (except async and scheduled_product_clone_id).
	Params map[string]string
	// Status is the HTTP status the fake answered (or meant to answer,
	// when a fault cut the connection).
	Status int
	// JobIDs are the jobs it created.
	JobIDs []int64
	// ProductID is the scheduled product id (0 when refused before one was
	// made).
	ProductID int64
	// Error is the error message of a refused post.
	Error string
	// At is when the request reached the handler, by the real clock (not
	// OpenQAOptions.Now): for tests that time what leads to a post.
	At time.Time
}

// OpenQAFault is an injected failure. It hits the next Times requests whose
// method and path match (Method "" matches any; Path is a prefix of the
// request path).
type OpenQAFault struct {
	Method string
	Path   string
	// Status is the HTTP status to answer instead of the real answer.
	// 0 with Hang set means: answer normally after the hang (if the client
	// is still there); 0 without Hang means 503.
	Status int
	// AfterEffect lets the request take effect first (a POST creates its
	// jobs) and only then fail: the "did my POST work?" case.
	AfterEffect bool
	// Hang holds the answer this long, or until the client gives up.
	Hang time.Duration
	// Skip lets this many matching requests through before the fault
	// starts hitting, e.g. to fail the re-check but not the first check.
	Skip int
	// Times is how many requests the fault hits; 0 means 1.
	Times int
	// RetryAfter, when set, is sent as the Retry-After header with Status
	// ("0": ask again at once).
	RetryAfter string
}

type outcomeRule struct {
	build, flavor, arch, test string
	results                   []string
}

// OpenQA is a simulated openQA server on 127.0.0.1.
type OpenQA struct {
	srv  *httptest.Server
	opts OpenQAOptions

	mu        sync.Mutex
	keys      map[string]OpenQAKey
	templates []OpenQATemplate
	jobs      map[int64]*OpenQAJob
	nextJob   int64
	nextProd  int64
	posts     []OpenQAPost
	requests  map[string]int
	faults    []*OpenQAFault
	outcomes  []outcomeRule
	outcomeFn func(job OpenQAJob, attempt int) string
	delay     delay
	random    faultSwitch
	// restartsOfCloned counts restart POSTs for a job that had a clone.
	restartsOfCloned int
	// failedModule names, by test, the module a failed job of it fails in
	// (default: the test's own name).
	failedModule map[string]string
	// comments are the job groups' comments, by group id.
	comments    map[int][]OpenQAComment
	nextComment int64
}

// OpenQAComment is a comment of a job group.
type OpenQAComment struct {
	ID      int64     `json:"id"`
	Text    string    `json:"text"`
	User    string    `json:"userName"`
	Created time.Time `json:"created"`
}

// NewOpenQA starts a fake openQA. Close it when done.
func NewOpenQA(opts OpenQAOptions) *OpenQA {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.JobClock == nil {
		opts.JobClock = opts.Now
	}
	if opts.PageLimit <= 0 {
		opts.PageLimit = OpenQADefaultLimit
	}
	if opts.AutoCloneLimit == 0 {
		opts.AutoCloneLimit = 2
	}
	if opts.Templates == nil {
		opts.Templates = FedoraOpenQATemplates()
	}
	s := &OpenQA{
		opts:     opts,
		keys:     map[string]OpenQAKey{},
		jobs:     map[int64]*OpenQAJob{},
		requests: map[string]int{},
		comments: map[int][]OpenQAComment{},
	}
	for _, k := range opts.Keys {
		s.keys[k.Key] = k
	}
	for _, t := range opts.Templates {
		s.addTemplate(t)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/isos", s.postISOs)
	mux.HandleFunc("GET /api/v1/jobs", s.getJobs)
	mux.HandleFunc("GET /api/v1/jobs/{id}", s.getJob)
	mux.HandleFunc("GET /api/v1/jobs/{id}/details", s.getJobDetails)
	mux.HandleFunc("POST /api/v1/jobs/{id}/restart", s.postRestart)
	mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", s.postCancel)
	mux.HandleFunc("GET /api/v1/groups/{id}/comments", s.getGroupComments)
	mux.HandleFunc("POST /api/v1/groups/{id}/comments", s.postGroupComment)
	s.srv = httptest.NewServer(s.faulty(mux))
	return s
}

// URL returns the server's base URL, e.g. http://127.0.0.1:41234.
func (s *OpenQA) URL() string { return s.srv.URL }

// Close shuts the server down.
func (s *OpenQA) Close() { s.srv.Close() }

// AddKey accepts another API key.
func (s *OpenQA) AddKey(key, secret string, operator bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = OpenQAKey{Key: key, Secret: secret, Operator: operator}
}

// AddTemplate adds a job template.
func (s *OpenQA) AddTemplate(t OpenQATemplate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addTemplate(t)
}

func (s *OpenQA) addTemplate(t OpenQATemplate) {
	if t.Distri == "" {
		t.Distri = "fedora"
	}
	if t.Version == "" {
		t.Version = "*"
	}
	if t.GroupID == 0 {
		t.GroupID = 1
	}
	if t.Group == "" {
		t.Group = "fedora"
	}
	s.templates = append(s.templates, t)
}

// SetOutcome scripts the results of the jobs of one test: the first run
// ends with results[0], its first clone with results[1], and so on, the last
// result repeating. An empty build, flavor, arch or test matches any; the
// rule set last wins. Jobs with no rule pass. "incomplete" makes openQA clone
// the job (see AutoCloneLimit), so SetOutcome(b, f, a, t, "incomplete",
// "passed") is a crash that a retry fixes.
func (s *OpenQA) SetOutcome(build, flavor, arch, test string, results ...string) {
	if len(results) == 0 {
		results = []string{oqPassed}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes = append(s.outcomes, outcomeRule{build, flavor, arch, test, results})
}

// SetOutcomeFunc decides results with a function instead; it wins over
// SetOutcome rules when it returns a non-empty result. attempt is 0 for a
// job as posted and n for its n-th clone.
func (s *OpenQA) SetOutcomeFunc(f func(job OpenQAJob, attempt int) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomeFn = f
}

// SetLatency delays every answer by d, as a distant openQA would.
func (s *OpenQA) SetLatency(d time.Duration) { s.delay.set(d) }

// SetGate holds every request at g until the test releases it (nil: no
// gate); see Gate.
func (s *OpenQA) SetGate(g *Gate) { s.delay.setGate(g) }

// InjectFault arms a failure for the next matching requests.
func (s *OpenQA) InjectFault(f OpenQAFault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Requests counts the requests received for "METHOD /path" (no query), e.g.
// Requests("POST", "/api/v1/isos"), injected failures included.
func (s *OpenQA) Requests(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[method+" "+path]
}

// TotalRequests counts every request received.
func (s *OpenQA) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.requests {
		n += v
	}
	return n
}

// Posts returns every POST /api/v1/isos received, oldest first.
func (s *OpenQA) Posts() []OpenQAPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]OpenQAPost, len(s.posts))
	for i, p := range s.posts {
		p.Params = cloneMap(p.Params)
		p.JobIDs = slices.Clone(p.JobIDs)
		out[i] = p
	}
	return out
}

// SetRandomFaults makes a fraction of the requests fail at random from now
// on (see RandomFaultOptions): after the faults injected with InjectFault,
// and after the request was counted. A POST hit by FaultTimeout or
// FaultTruncated has taken effect (its jobs exist) when its answer is
// lost. P 0 turns it off.
func (s *OpenQA) SetRandomFaults(opts RandomFaultOptions) { s.random.set("openqa", opts) }

// RandomFaultCounts returns how many requests each kind of random fault
// hit.
func (s *OpenQA) RandomFaultCounts() map[FaultKind]int { return s.random.counts() }

// JobSetsCreated counts, by "BUILD FLAVOR ARCH", the POSTs to
// /api/v1/isos that created jobs: a product scheduled once counts 1.
func (s *OpenQA) JobSetsCreated() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, p := range s.posts {
		if len(p.JobIDs) > 0 {
			out[p.Params["BUILD"]+" "+p.Params["FLAVOR"]+" "+p.Params["ARCH"]]++
		}
	}
	return out
}

// RestartsOfClonedJobs counts the POSTs to /api/v1/jobs/<id>/restart for a
// job that had a clone already: a client that checks before it restarts
// again sends none.
func (s *OpenQA) RestartsOfClonedJobs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restartsOfCloned
}

// Jobs returns a copy of every job, by id.
func (s *OpenQA) Jobs() []OpenQAJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]OpenQAJob, 0, len(s.jobs))
	for _, id := range s.sortedIDs() {
		out = append(out, s.copyJob(s.jobs[id]))
	}
	return out
}

// Job returns a copy of one job.
func (s *OpenQA) Job(id int64) (OpenQAJob, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return OpenQAJob{}, false
	}
	return s.copyJob(j), true
}

func (s *OpenQA) copyJob(j *OpenQAJob) OpenQAJob {
	c := *j
	c.Settings = cloneMap(j.Settings)
	return c
}

func (s *OpenQA) sortedIDs() []int64 {
	ids := make([]int64, 0, len(s.jobs))
	for id := range s.jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Advance moves every unfinished job one step: scheduled → running →
// done with its scripted result. A job done as incomplete gets an
// automatic clone (now, or at the next Advance with DelayedAutoClone). It
// returns how many jobs changed; 0 means nothing is left to do.
func (s *OpenQA) Advance() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.JobClock().UTC()
	changed := 0
	// Clones made during this round are not in ids: they start next round.
	ids := s.sortedIDs()
	for _, id := range ids {
		j := s.jobs[id]
		switch {
		case j.cloneDue:
			j.cloneDue = false
			s.cloneJob(j)
			changed++
		case j.State == oqScheduled:
			j.State, j.TStarted = oqRunning, now
			changed++
		case j.State == oqRunning:
			j.State, j.TFinished = oqDone, now
			j.Result = s.outcome(j)
			changed++
			if j.Result == oqIncomplete && s.opts.AutoCloneLimit > 0 && j.attempt < s.opts.AutoCloneLimit {
				if s.opts.DelayedAutoClone {
					j.cloneDue = true
				} else {
					s.cloneJob(j)
				}
			}
		}
	}
	return changed
}

// Settle advances until every job is final (bounded, so a script that
// clones forever cannot hang a test) and returns the number of rounds.
func (s *OpenQA) Settle() int {
	for i := 1; i <= 1000; i++ {
		if s.Advance() == 0 {
			return i
		}
	}
	return 1000
}

// AutoAdvance calls Advance every interval until ctx ends, for demos where
// jobs should progress on their own.
func (s *OpenQA) AutoAdvance(ctx context.Context, every time.Duration) {
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Advance()
			}
		}
	}()
}

// Restart clones a job as POST /jobs/<id>/restart does and returns the new
// id. A job still pending ends as cancelled/user_restarted.
func (s *OpenQA) Restart(id int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restart(id)
}

func (s *OpenQA) restart(id int64) (int64, error) {
	j, ok := s.jobs[id]
	if !ok {
		return 0, fmt.Errorf("job %d does not exist", id)
	}
	if j.CloneID != 0 {
		return 0, fmt.Errorf("job %d is already cloned as %d", id, j.CloneID)
	}
	now := s.opts.JobClock().UTC()
	if j.pending() {
		j.State, j.Result, j.TFinished = oqCancelled, oqUserRestarted, now
	}
	return s.cloneJob(j), nil
}

// Cancel cancels a job as POST /jobs/<id>/cancel does.
func (s *OpenQA) Cancel(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return fmt.Errorf("job %d does not exist", id)
	}
	if j.pending() {
		j.State, j.Result, j.TFinished = oqCancelled, oqUserCancelled, s.opts.JobClock().UTC()
	}
	return nil
}

// cloneJob makes the clone of j: the clone points back with origin_id, j
// forward with clone_id.
func (s *OpenQA) cloneJob(j *OpenQAJob) int64 {
	s.nextJob++
	c := &OpenQAJob{
		ID: s.nextJob, Test: j.Test, Machine: j.Machine,
		State: oqScheduled, Result: oqNone, OriginID: j.ID,
		Priority: j.Priority, GroupID: j.GroupID, Group: j.Group,
		Settings: cloneMap(j.Settings), ProductID: j.ProductID,
		attempt: j.attempt + 1,
	}
	c.Name = j.Name
	c.Settings["NAME"] = fmt.Sprintf("%08d-%s", c.ID, c.Name)
	s.jobs[c.ID] = c
	j.CloneID = c.ID
	return c.ID
}

func (s *OpenQA) outcome(j *OpenQAJob) string {
	if s.outcomeFn != nil {
		if r := s.outcomeFn(s.copyJob(j), j.attempt); r != "" {
			return r
		}
	}
	for i := len(s.outcomes) - 1; i >= 0; i-- {
		o := s.outcomes[i]
		if (o.build == "" || o.build == j.Settings["BUILD"]) &&
			(o.flavor == "" || o.flavor == j.Settings["FLAVOR"]) &&
			(o.arch == "" || o.arch == j.Settings["ARCH"]) &&
			(o.test == "" || o.test == j.Test) {
			return o.results[min(j.attempt, len(o.results)-1)]
		}
	}
	return oqPassed
}

// ---- HTTP ----

// faulty counts requests and applies injected faults around the real
// handlers.
func (s *OpenQA) faulty(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.delay.wait(r, "openqa") {
			return // the client gave up
		}
		s.mu.Lock()
		s.requests[r.Method+" "+r.URL.Path]++
		var fault *OpenQAFault
		for i, f := range s.faults {
			if (f.Method == "" || f.Method == r.Method) && strings.HasPrefix(r.URL.Path, f.Path) {
				if f.Skip > 0 {
					f.Skip--
					break
				}
				fc := *f
				fault = &fc
				f.Times--
				if f.Times <= 0 {
					s.faults = slices.Delete(s.faults, i, i+1)
				}
				break
			}
		}
		s.mu.Unlock()
		if fault == nil {
			withRandomFaults(s.random.get, next).ServeHTTP(w, r)
			return
		}
		var rec *httptest.ResponseRecorder
		if fault.AfterEffect {
			rec = httptest.NewRecorder()
			next.ServeHTTP(rec, r)
		}
		if fault.Hang > 0 {
			// Read the body first: only then does the server watch the
			// connection, and see a client that gives up.
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			t := time.NewTimer(fault.Hang)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return // the client gave up: nothing reaches it
			}
		}
		switch {
		case fault.Status != 0:
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			http.Error(w, fmt.Sprintf("injected fault: HTTP %d", fault.Status), fault.Status)
		case rec != nil:
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		case fault.Hang > 0:
			next.ServeHTTP(w, r)
		default:
			http.Error(w, "injected fault: HTTP 503", http.StatusServiceUnavailable)
		}
	})
}

// authLevel is what a request proved about itself.
type authResult struct {
	ok       bool
	operator bool
	reason   string // why not, in openQA's words
}

// authenticate checks the HMAC headers as openQA's key auth does: key
// known, timestamp not older than the tolerance (a future one is
// accepted), and the hash over the request target plus the timestamp
// exactly as sent, compared case-sensitively.
func (s *OpenQA) authenticate(r *http.Request) authResult {
	key := r.Header.Get("X-API-Key")
	if key == "" {
		return authResult{reason: "no api key"}
	}
	s.mu.Lock()
	k, ok := s.keys[key]
	s.mu.Unlock()
	if !ok {
		return authResult{reason: "Not authorized"}
	}
	ts := r.Header.Get("X-API-Microtime")
	t, err := strconv.ParseFloat(ts, 64)
	if err != nil || s.opts.Now().Sub(time.Unix(0, int64(t*1e9))) > openQATimeTolerance {
		return authResult{reason: "timestamp mismatch - check whether clocks on the local host and the web UI host are in sync"}
	}
	mac := hmac.New(sha1.New, []byte(k.Secret))
	mac.Write([]byte(r.RequestURI + ts))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-API-Hash"))) {
		return authResult{reason: "unknown error (wrong secret?)"}
	}
	return authResult{ok: true, operator: k.Operator}
}

// requireOperator answers 403 JSON as openQA does and reports false when r
// may not use an operator route.
func (s *OpenQA) requireOperator(w http.ResponseWriter, r *http.Request) bool {
	a := s.authenticate(r)
	if !a.ok {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": a.reason, "error_status": 403})
		return false
	}
	if !a.operator {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "Administrator level required", "error_status": 403})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// isoParams reads the parameters of POST /isos from the query string and
// the form body and upper-cases their names, as openQA does.
func isoParams(r *http.Request) (map[string]string, error) {
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, vs := range r.Form {
		name := k
		if k != "async" && k != "scheduled_product_clone_id" {
			name = strings.ToUpper(k)
		}
		out[name] = strings.ReplaceAll(vs[len(vs)-1], "%2F", "/")
	}
	return out, nil
}

func (s *OpenQA) postISOs(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if !s.requireOperator(w, r) {
		return
	}
	params, err := isoParams(r)
	if err != nil {
		writeText(w, http.StatusBadRequest, "Error: "+err.Error())
		return
	}
	rec := OpenQAPost{Params: params, At: at}
	defer func() {
		s.mu.Lock()
		s.posts = append(s.posts, rec)
		s.mu.Unlock()
	}()
	var missing []string
	for _, k := range []string{"DISTRI", "VERSION", "FLAVOR", "ARCH"} {
		if params[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		rec.Status, rec.Error = http.StatusBadRequest, "missing parameters: "+strings.Join(missing, " ")
		writeText(w, http.StatusBadRequest, "Error: missing parameters: "+strings.Join(missing, " "))
		return
	}
	if host := s.forbiddenAssetHost(params); host != "" {
		rec.Status, rec.Error = http.StatusForbidden, "non-passlisted host "+host
		writeText(w, http.StatusForbidden, "Asset download requested from non-passlisted host "+host+".")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextProd++
	rec.ProductID = s.nextProd
	tmpls := s.matchTemplates(params)
	if len(tmpls) == 0 {
		msg := fmt.Sprintf("no products found for %s-%s-%s", params["DISTRI"], params["FLAVOR"], params["ARCH"])
		rec.Status, rec.Error = http.StatusOK, msg
		writeJSON(w, http.StatusOK, map[string]any{
			"scheduled_product_id": rec.ProductID, "error": msg, "count": 0, "ids": []int64{}, "failed": map[string]any{},
		})
		return
	}
	now := s.opts.JobClock().UTC()
	if params["_OBSOLETE"] == "1" {
		s.obsolete(params, now)
	}
	var only map[string]bool
	if t := params["TEST"]; t != "" {
		only = map[string]bool{}
		for _, n := range strings.Split(t, ",") {
			only[n] = true
		}
	}
	ids := []int64{}
	for _, t := range tmpls {
		for _, spec := range t.Tests {
			test, machine := splitTest(spec, params["ARCH"])
			if only != nil && !only[test] {
				continue
			}
			ids = append(ids, s.newJob(params, t, test, machine, rec.ProductID))
		}
	}
	rec.Status, rec.JobIDs = http.StatusOK, ids
	writeJSON(w, http.StatusOK, map[string]any{
		"scheduled_product_id": rec.ProductID, "count": len(ids), "ids": ids, "failed": []any{},
	})
}

func (s *OpenQA) forbiddenAssetHost(params map[string]string) string {
	if len(s.opts.DownloadDomains) == 0 {
		return ""
	}
	for k, v := range params {
		if !strings.HasSuffix(k, "_URL") {
			continue
		}
		u, err := url.Parse(v)
		if err != nil {
			return v
		}
		h := u.Hostname()
		ok := false
		for _, d := range s.opts.DownloadDomains {
			if h == d || strings.HasSuffix(h, "."+d) {
				ok = true
			}
		}
		if !ok {
			return h
		}
	}
	return ""
}

// matchTemplates finds the templates of the product named by params: the
// exact version if any template has it, else version "*".
func (s *OpenQA) matchTemplates(params map[string]string) []OpenQATemplate {
	var exact, star []OpenQATemplate
	for _, t := range s.templates {
		if !strings.EqualFold(t.Distri, params["DISTRI"]) || t.Flavor != params["FLAVOR"] || t.Arch != params["ARCH"] {
			continue
		}
		switch t.Version {
		case params["VERSION"]:
			exact = append(exact, t)
		case "*":
			star = append(star, t)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return star
}

// obsolete cancels the pending jobs of the same DISTRI, VERSION, FLAVOR and
// ARCH (and BUILD with _ONLY_OBSOLETE_SAME_BUILD): the reason re-posting a
// build replaces its running jobs.
func (s *OpenQA) obsolete(params map[string]string, now time.Time) {
	keys := []string{"DISTRI", "VERSION", "FLAVOR", "ARCH"}
	if params["_ONLY_OBSOLETE_SAME_BUILD"] == "1" {
		keys = append(keys, "BUILD")
	}
	for _, j := range s.jobs {
		if !j.pending() {
			continue
		}
		match := true
		for _, k := range keys {
			if j.Settings[k] != params[k] {
				match = false
			}
		}
		if match {
			j.State, j.Result, j.TFinished = oqCancelled, oqObsoleted, now
		}
	}
}

func splitTest(spec, arch string) (test, machine string) {
	if i := strings.IndexByte(spec, '@'); i >= 0 {
		return spec[:i], spec[i+1:]
	}
	switch arch {
	case "x86_64":
		return spec, "64bit"
	default:
		return spec, arch
	}
}

// unsafeNameChars are what openQA replaces in an asset name, compiled on
// first use (docs/conventions.md).
var unsafeNameChars = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^a-zA-Z0-9@._+:-]`) })

func (s *OpenQA) newJob(params map[string]string, t OpenQATemplate, test, machine string, product int64) int64 {
	s.nextJob++
	id := s.nextJob
	settings := map[string]string{}
	for k, v := range params {
		if strings.HasPrefix(k, "_") || k == "async" || k == "scheduled_product_clone_id" {
			continue
		}
		settings[k] = v
	}
	settings["TEST"], settings["MACHINE"] = test, machine
	settings["BACKEND"] = "qemu"
	// asset short names, as openQA derives them from the download URLs
	for k, v := range params {
		switch {
		case strings.HasSuffix(k, "_DECOMPRESS_URL"):
			short := strings.TrimSuffix(k, "_DECOMPRESS_URL")
			if settings[short] == "" {
				base := path.Base(v)
				settings[short] = strings.TrimSuffix(base, path.Ext(base))
			}
		case strings.HasSuffix(k, "_URL"):
			short := strings.TrimSuffix(k, "_URL")
			if settings[short] == "" && short != "TOOLBOX_IMAGE" {
				settings[short] = path.Base(v)
			}
		}
	}
	name := fmt.Sprintf("%s-%s-%s-%s-Build%s-%s@%s", params["DISTRI"], params["VERSION"], params["FLAVOR"],
		params["ARCH"], params["BUILD"], test, machine)
	name = unsafeNameChars().ReplaceAllString(name, "_")
	settings["NAME"] = fmt.Sprintf("%08d-%s", id, name)
	s.jobs[id] = &OpenQAJob{
		ID: id, Name: name, Test: test, Machine: machine,
		State: oqScheduled, Result: oqNone, Priority: 50,
		GroupID: t.GroupID, Group: t.Group, Settings: settings, ProductID: product,
	}
	return id
}

// jobJSON renders a job as openQA's jobs API does (nulls included).
func (s *OpenQA) jobJSON(j *OpenQAJob) map[string]any {
	nullID := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	nullTime := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.Format("2006-01-02T15:04:05")
	}
	assets := map[string][]string{}
	for _, k := range []string{"ISO", "HDD_1", "HDD_2"} {
		if v := j.Settings[k]; v != "" {
			typ := "hdd"
			if k == "ISO" {
				typ = "iso"
			}
			assets[typ] = append(assets[typ], v)
		}
	}
	deps := func() map[string][]int64 {
		return map[string][]int64{"Chained": {}, "Directly chained": {}, "Parallel": {}}
	}
	return map[string]any{
		"id": j.ID, "name": j.Name, "test": j.Test, "priority": j.Priority,
		"state": j.State, "result": j.Result,
		"clone_id": nullID(j.CloneID), "origin_id": nullID(j.OriginID),
		"t_started": nullTime(j.TStarted), "t_finished": nullTime(j.TFinished),
		"group_id": j.GroupID, "group": j.Group, "blocked_by_id": nil,
		"settings": j.Settings, "assets": assets,
		"parents": deps(), "children": deps(), "has_parents": 0, "parents_ok": 1,
		"modules": []any{},
	}
}

// jobFilters are GET /api/v1/jobs's exact-match filters and the settings
// they compare.
var jobFilters = map[string]string{
	"build": "BUILD", "iso": "ISO", "distri": "DISTRI", "version": "VERSION",
	"flavor": "FLAVOR", "arch": "ARCH", "test": "TEST", "machine": "MACHINE",
	"hdd_1": "HDD_1", "worker_class": "WORKER_CLASS",
}

func multi(q url.Values, key string) map[string]bool {
	vs := q[key]
	if len(vs) == 0 {
		return nil
	}
	set := map[string]bool{}
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p != "" {
				set[p] = true
			}
		}
	}
	return set
}

func (s *OpenQA) getJobs(w http.ResponseWriter, r *http.Request) {
	_ = s.authenticate(r) // maybe_auth: a bad signature is just anonymous
	q := r.URL.Query()
	limit := s.opts.PageLimit
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = min(v, OpenQAMaxLimit)
	}
	offset := 0
	if v, err := strconv.Atoi(q.Get("offset")); err == nil && v > 0 {
		offset = v
	}
	states, results, ids := multi(q, "state"), multi(q, "result"), multi(q, "ids")

	s.mu.Lock()
	defer s.mu.Unlock()
	var sel []*OpenQAJob
	all := s.sortedIDs()
	slices.Reverse(all) // newest first, as openQA cuts its pages
	for _, id := range all {
		j := s.jobs[id]
		if ids != nil {
			if !ids[strconv.FormatInt(id, 10)] {
				continue
			}
		} else {
			ok := true
			for param, setting := range jobFilters {
				if v := q.Get(param); v != "" && j.Settings[setting] != v {
					ok = false
				}
			}
			if !ok {
				continue
			}
		}
		if states != nil && !states[j.State] || results != nil && !results[j.Result] {
			continue
		}
		switch q.Get("scope") {
		case "current":
			if j.CloneID != 0 {
				continue
			}
		case "relevant":
			if j.CloneID != 0 && !s.jobs[j.CloneID].pending() || j.Result == oqObsoleted {
				continue
			}
		}
		sel = append(sel, j)
	}

	if q.Get("latest") == "1" {
		// openQA applies the row limit before de-duplicating and sends no
		// Link header: big builds are silently cut (PRs #4979, #4996).
		if len(sel) > limit {
			sel = sel[:limit]
		}
		seen := map[string]bool{}
		var latest []*OpenQAJob
		for _, j := range sel {
			k := strings.Join([]string{j.Settings["DISTRI"], j.Settings["VERSION"], j.Settings["FLAVOR"],
				j.Settings["ARCH"], j.Test, j.Machine, j.Settings["BUILD"]}, "\x00")
			if !seen[k] {
				seen[k] = true
				latest = append(latest, j)
			}
		}
		s.writeJobPage(w, latest)
		return
	}

	total := len(sel)
	page := sel[min(offset, total):min(offset+limit, total)]
	base := "http://" + r.Host + r.URL.Path
	link := func(off int, rel string) string {
		lq := url.Values{}
		for k, v := range q {
			lq[k] = v
		}
		lq.Set("limit", strconv.Itoa(limit))
		lq.Set("offset", strconv.Itoa(off))
		return fmt.Sprintf("<%s?%s>; rel=%q", base, lq.Encode(), rel)
	}
	links := []string{link(0, "first")}
	if offset+limit < total {
		links = append(links, link(offset+limit, "next"))
	}
	if offset > 0 {
		links = append(links, link(max(offset-limit, 0), "prev"))
	}
	w.Header().Set("Link", strings.Join(links, ", "))
	s.writeJobPage(w, page)
}

// writeJobPage sorts a page by id as strings, as a real 4.6 server was seen
// to do, so that clients cannot lean on numeric order.
func (s *OpenQA) writeJobPage(w http.ResponseWriter, page []*OpenQAJob) {
	page = slices.Clone(page)
	slices.SortFunc(page, func(a, b *OpenQAJob) int {
		return strings.Compare(strconv.FormatInt(a.ID, 10), strconv.FormatInt(b.ID, 10))
	})
	out := make([]map[string]any, 0, len(page))
	for _, j := range page {
		out = append(out, s.jobJSON(j))
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

func (s *OpenQA) jobByPath(w http.ResponseWriter, r *http.Request) (*OpenQAJob, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	j, ok := s.jobs[id]
	if err != nil || !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Job does not exist", "error_status": 404})
		return nil, false
	}
	return j, true
}

func (s *OpenQA) getJob(w http.ResponseWriter, r *http.Request) {
	_ = s.authenticate(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobByPath(w, r)
	if !ok {
		return
	}
	var followed int64
	if r.URL.Query().Get("follow") == "1" {
		for j.CloneID != 0 {
			j = s.jobs[j.CloneID]
		}
		followed = j.ID
	}
	body := s.jobJSON(j)
	body["parent_group_id"], body["parent_group"] = nil, nil
	out := map[string]any{"job": body}
	if followed != 0 {
		out["followed_id"] = followed
	}
	writeJSON(w, http.StatusOK, out)
}

// SetFailedModule makes failed jobs of test fail in module (as the
// details of a job report it); by default they fail in a module named
// after the test.
func (s *OpenQA) SetFailedModule(test, module string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failedModule == nil {
		s.failedModule = map[string]string{}
	}
	s.failedModule[test] = module
}

// getJobDetails answers GET /api/v1/jobs/<id>/details as openQA does: the
// job with its test modules' results (a setup module that passed, then the
// test's own module with the job's verdict).
func (s *OpenQA) getJobDetails(w http.ResponseWriter, r *http.Request) {
	_ = s.authenticate(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobByPath(w, r)
	if !ok {
		return
	}
	body := s.jobJSON(j)
	var results []map[string]any
	if !j.pending() {
		module, result := j.Test, "passed"
		switch j.Result {
		case "failed":
			result = "failed"
			if m, ok := s.failedModule[j.Test]; ok {
				module = m
			}
		case "softfailed":
			result = "softfailed"
		}
		results = []map[string]any{
			{"name": "_boot_to_anaconda", "category": "installation", "result": "passed"},
			{"name": module, "category": "tests", "result": result},
		}
	}
	body["testresults"] = results
	body["logs"], body["ulogs"] = []any{}, []any{}
	writeJSON(w, http.StatusOK, map[string]any{"job": body})
}

func (s *OpenQA) postRestart(w http.ResponseWriter, r *http.Request) {
	if !s.requireOperator(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// As openQA 4.6 answers: an unknown id or a job still scheduled is
	// 200 with nothing restarted; a cloned one says so in "errors".
	nothing := map[string]any{"result": []any{}, "test_url": []any{}}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	j, ok := s.jobs[id]
	switch {
	case err != nil || !ok || j.State == oqScheduled:
		writeJSON(w, http.StatusOK, nothing)
		return
	case j.CloneID != 0:
		s.restartsOfCloned++
		nothing["errors"] = []string{fmt.Sprintf("Specified job %d has already been cloned as %d", j.ID, j.CloneID)}
		writeJSON(w, http.StatusOK, nothing)
		return
	}
	clone, err := s.restart(j.ID)
	if err != nil {
		nothing["errors"] = []string{err.Error()}
		writeJSON(w, http.StatusOK, nothing)
		return
	}
	old := strconv.FormatInt(j.ID, 10)
	writeJSON(w, http.StatusOK, map[string]any{"result": []map[string]int64{{old: clone}},
		"test_url": []map[string]string{{old: "/tests/" + strconv.FormatInt(clone, 10)}}})
}

func (s *OpenQA) postCancel(w http.ResponseWriter, r *http.Request) {
	if !s.requireOperator(w, r) {
		return
	}
	s.mu.Lock()
	j, ok := s.jobByPath(w, r)
	s.mu.Unlock()
	if !ok {
		return
	}
	_ = s.Cancel(j.ID)
	writeJSON(w, http.StatusOK, map[string]any{"result": nil}) // as openQA 4.6 answers, every time
}

// GroupComments returns the comments of a job group, oldest first.
func (s *OpenQA) GroupComments(group int) []OpenQAComment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.comments[group])
}

// groupByPath finds the job group of the path's {id}: a group some
// template schedules into. openQA answers 404 for another.
func (s *OpenQA) groupByPath(w http.ResponseWriter, r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err == nil {
		for _, t := range s.templates {
			if t.GroupID == int64(id) {
				return id, true
			}
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"error": "Group " + r.PathValue("id") + " does not exist", "error_status": 404})
	return 0, false
}

func (s *OpenQA) getGroupComments(w http.ResponseWriter, r *http.Request) {
	_ = s.authenticate(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groupByPath(w, r)
	if !ok {
		return
	}
	out := s.comments[g]
	if out == nil {
		out = []OpenQAComment{}
	}
	writeJSON(w, http.StatusOK, out)
}

// postGroupComment adds a comment, as any user may (no operator needed):
// form field text, answer {"id": N}.
func (s *OpenQA) postGroupComment(w http.ResponseWriter, r *http.Request) {
	a := s.authenticate(r)
	if !a.ok {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": a.reason, "error_status": 403})
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("text") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Erroneous parameters (text missing)", "error_status": 400})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groupByPath(w, r)
	if !ok {
		return
	}
	s.nextComment++
	s.comments[g] = append(s.comments[g], OpenQAComment{ID: s.nextComment, Text: r.PostForm.Get("text"), User: r.Header.Get("X-API-Key"), Created: s.opts.Now().UTC()})
	writeJSON(w, http.StatusOK, map[string]any{"id": s.nextComment})
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// FedoraOpenQATemplates returns a small but Fedora-shaped set of job
// templates: a few real test suite names for each flavor fedora_openqa
// schedules by default on x86_64 (21 jobs for a standard Rawhide nightly),
// one or two for its aarch64 and ppc64le flavors, and the image-less
// upgrade flavors on every arch they run on.
func FedoraOpenQATemplates() []OpenQATemplate {
	t := func(flavor, arch string, tests ...string) OpenQATemplate {
		return OpenQATemplate{Flavor: flavor, Arch: arch, Tests: tests}
	}
	return []OpenQATemplate{
		t("Server-boot-iso", "x86_64", "install_default", "install_default@uefi"),
		t("Server-dvd-iso", "x86_64", "install_default_upload", "install_default@uefi", "server_cockpit_default", "server_realmd_join_kickstart"),
		t("Everything-boot-iso", "x86_64", "install_default", "install_default@uefi"),
		t("Workstation-live-iso", "x86_64", "install_default_upload", "desktop_terminal", "apps_startstop"),
		t("Workstation-live_osbuild-iso", "x86_64", "install_default"),
		t("KDE-live-iso", "x86_64", "install_default_upload", "desktop_terminal"),
		t("i3-live-iso", "x86_64", "install_default"),
		t("Silverblue-dvd_ostree-iso", "x86_64", "install_default", "silverblue_rebase"),
		t("IoT-dvd_ostree-iso", "x86_64", "install_default"),
		t("BaseOS-dvd-iso", "x86_64", "install_default"),
		t("BaseOS-boot-iso", "x86_64", "install_default"),
		t("Cloud_Base-qcow2-qcow2", "x86_64", "cloud_autocloud"),
		t("universal", "x86_64", "install_repository_http_variation", "install_asian_language", "install_blivet_software_raid"),
		t("Workstation-upgrade", "x86_64", "upgrade_desktop_64bit", "upgrade_2_desktop_64bit"),
		t("Server-boot-iso", "aarch64", "install_default"),
		t("Server-dvd-iso", "aarch64", "install_default"),
		t("Minimal-raw_xz-raw.xz", "aarch64", "arm_image_deployment_upload"),
		t("Server-raw_xz-raw.xz", "aarch64", "arm_image_deployment_upload"),
		t("Workstation-raw_xz-raw.xz", "aarch64", "arm_image_deployment_upload"),
		t("Cloud_Base-qcow2-qcow2", "aarch64", "cloud_autocloud"),
		t("IoT-dvd_ostree-iso", "aarch64", "install_default"),
		t("universal", "aarch64", "install_repository_http_variation"),
		t("Workstation-upgrade", "aarch64", "upgrade_desktop_64bit"),
		t("Everything-boot-iso", "ppc64le", "install_default"),
		t("Workstation-live-iso", "ppc64le", "install_default"),
		t("Server-boot-iso", "ppc64le", "install_default"),
		t("Server-dvd-iso", "ppc64le", "install_default"),
		t("Cloud_Base-qcow2-qcow2", "ppc64le", "cloud_autocloud"),
		t("Silverblue-dvd_ostree-iso", "ppc64le", "install_default"),
		t("IoT-dvd_ostree-iso", "ppc64le", "install_default"),
		t("universal", "ppc64le", "install_repository_http_variation"),
	}
}
