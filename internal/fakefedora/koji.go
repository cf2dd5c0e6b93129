package fakefedora

// This file is the simulated Koji hub. It speaks XML-RPC over HTTP byte for
// byte the way a real hub does: the hub marshals with CPython's
// xmlrpc.client marshaller (allow_none on, Koji's <i8> extension, datetimes
// as isoformat(' ') strings), so the fake has its own small encoder that
// reproduces that output instead of borrowing a Go XML-RPC library. A client
// tested against it therefore meets the real wire format, including the
// newlines between elements, typed <string>s, <nil/> without a namespace and
// faults sent with HTTP 200. It deliberately never emits <value/> or untyped
// text: a real hub never does, and both trip bugs in kolo/xmlrpc.

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Koji task states, as the hub numbers them (koji.TASK_STATES).
const (
	KojiFree     = 0
	KojiOpen     = 1
	KojiClosed   = 2
	KojiCanceled = 3
	KojiAssigned = 4
	KojiFailed   = 5
)

// Koji fault codes the fake raises (koji/__init__.py).
const (
	KojiFaultGeneric       = 1000
	KojiFaultServerOffline = 1014
	KojiFaultParameter     = 1019
)

// KojiVersion is what the fake reports in the Koji-Version header and from
// getKojiVersion.
const KojiVersion = "1.35.3"

// kojiMaxRequestLength is the hub's MaxRequestLength default.
const kojiMaxRequestLength = 4194304

// KojiStateChange is one step of a task's scripted life: After its creation
// the task enters State. A schedule is a list of these in time order; before
// the first step the task is FREE.
type KojiStateChange struct {
	After time.Duration
	State int
}

// KojiRunSchedule is the usual life of a task: FREE when created, OPEN after
// wait, and final (CLOSED, FAILED or CANCELED) after wait+run.
func KojiRunSchedule(wait, run time.Duration, final int) []KojiStateChange {
	return []KojiStateChange{{0, KojiFree}, {wait, KojiOpen}, {wait + run, final}}
}

// KojiTask describes a task to add to the hub. Zero fields get defaults:
// the next free ID, arch "noarch", owner "kojiadmin", the hub's current time
// as creation time, a schedule that stays FREE.
type KojiTask struct {
	ID       int
	Method   string
	Arch     string
	Owner    string // a user name; the user is created when unknown
	Parent   int    // 0 for a top-level task
	Label    string // only subtasks have labels
	Request  []any  // the positional arguments, as the hub stores them
	Created  time.Time
	Schedule []KojiStateChange
	// Result is the task result once CLOSED; nil gives a small struct.
	Result   any
	Channel  int
	Priority int
	Weight   float64
}

type kojiUser struct {
	id   int
	name string
}

// KojiHubOptions configures a KojiHub. The zero value is usable.
type KojiHubOptions struct {
	// Now is the hub's clock. Default time.Now; SetNow and Advance switch
	// the hub to a manual clock.
	Now func() time.Time
	// Location is the database time zone in which *_time strings are
	// rendered. Default UTC ("+00:00").
	Location *time.Location
	// Latency is slept before every HTTP request is answered.
	Latency time.Duration
}

// KojiHub is a simulated Koji hub. It is an http.Handler; Start serves it on
// 127.0.0.1. All methods are safe for concurrent use.
type KojiHub struct {
	mu       sync.Mutex
	now      func() time.Time
	manual   time.Time
	isManual bool
	loc      *time.Location
	latency  time.Duration
	tasks    map[int]*KojiTask
	nextID   int
	users    map[string]kojiUser
	userIDs  map[int]kojiUser
	nextUser int

	httpFailures []int  // statuses for the next requests
	retryAfter   string // Retry-After of injected 429 and 503 answers
	faults       []kojiFault
	callFaults   map[string][]kojiFault
	callCounts   map[string]int64

	requests atomic.Int64
	calls    atomic.Int64

	random faultSwitch
	// faulted holds, by hash of the request body, when a random XML-RPC
	// fault answered it; repeats how long after such a fault the same
	// request came again.
	faulted map[uint64]time.Time
	repeats []time.Duration

	srv *httptest.Server
}

// NewKojiHub returns an empty hub.
func NewKojiHub(opts KojiHubOptions) *KojiHub {
	h := &KojiHub{
		now:        opts.Now,
		loc:        opts.Location,
		latency:    opts.Latency,
		tasks:      map[int]*KojiTask{},
		nextID:     120000001,
		users:      map[string]kojiUser{},
		userIDs:    map[int]kojiUser{},
		nextUser:   3370,
		callFaults: map[string][]kojiFault{},
		callCounts: map[string]int64{},
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.loc == nil {
		h.loc = time.UTC
	}
	return h
}

// Start serves the hub on a random port of 127.0.0.1 and returns its URL,
// which ends in /kojihub like Fedora's. Close stops it.
func (h *KojiHub) Start() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv == nil {
		h.srv = httptest.NewServer(h)
	}
	return h.srv.URL + "/kojihub"
}

// URL returns the hub's URL once started, else "".
func (h *KojiHub) URL() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv == nil {
		return ""
	}
	return h.srv.URL + "/kojihub"
}

// Close stops a started hub.
func (h *KojiHub) Close() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Now returns the hub's current time.
func (h *KojiHub) Now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nowLocked()
}

func (h *KojiHub) nowLocked() time.Time {
	if h.isManual {
		return h.manual
	}
	return h.now()
}

// SetNow puts the hub on a manual clock at t: tasks then open and close only
// as a test advances it.
func (h *KojiHub) SetNow(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.manual, h.isManual = t, true
}

// Advance moves the hub's clock forward by d (switching to a manual clock
// at the current time first).
func (h *KojiHub) Advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.isManual {
		h.manual, h.isManual = h.now(), true
	}
	h.manual = h.manual.Add(d)
}

// SetLatency sets the delay before every HTTP answer.
func (h *KojiHub) SetLatency(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latency = d
}

// FailHTTP makes the next n requests fail with the HTTP status code (e.g.
// 503), before any XML is read.
func (h *KojiHub) FailHTTP(n, status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range n {
		h.httpFailures = append(h.httpFailures, status)
	}
}

// SetRetryAfter sets the Retry-After header sent with the 429 and 503
// answers of FailHTTP, as a proxy in front of a hub in maintenance sends it
// ("120", or "0" to be asked again at once); "" sends none.
func (h *KojiHub) SetRetryAfter(v string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.retryAfter = v
}

// FaultNext makes the next n requests answer with a top-level fault (HTTP
// 200), as a hub in maintenance mode does with 1014 "server is offline".
func (h *KojiHub) FaultNext(n, code int, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range n {
		h.faults = append(h.faults, kojiFault{code: code, msg: msg})
	}
}

// FaultCalls makes the next n calls of method fail with a fault. Inside a
// multicall that is a per-call fault; outside one, a top-level fault.
func (h *KojiHub) FaultCalls(method string, n, code int, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range n {
		h.callFaults[method] = append(h.callFaults[method], kojiFault{code: code, msg: msg, traceback: true})
	}
}

// Requests returns how many HTTP requests the hub received, failed ones
// included.
func (h *KojiHub) Requests() int64 { return h.requests.Load() }

// Calls returns how many method calls the hub ran, counting every call
// inside a multicall (and the multicall itself not at all).
func (h *KojiHub) Calls() int64 { return h.calls.Load() }

// CallCount returns how many times method was called.
func (h *KojiHub) CallCount(method string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.callCounts[method]
}

// AddUser adds a user (or returns the id of an existing one).
func (h *KojiHub) AddUser(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.userLocked(name)
}

func (h *KojiHub) userLocked(name string) int {
	if u, ok := h.users[name]; ok {
		return u.id
	}
	u := kojiUser{id: h.nextUser, name: name}
	h.nextUser++
	h.users[name] = u
	h.userIDs[u.id] = u
	return u.id
}

// AddTask adds a task and returns its ID. A task does not exist for the hub
// before its creation time.
func (h *KojiHub) AddTask(t KojiTask) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addTaskLocked(t)
}

func (h *KojiHub) addTaskLocked(t KojiTask) int {
	if t.ID == 0 {
		t.ID = h.nextID
	}
	if t.ID >= h.nextID {
		h.nextID = t.ID + 1
	}
	if t.Arch == "" {
		t.Arch = "noarch"
	}
	if t.Owner == "" {
		t.Owner = "kojiadmin"
	}
	h.userLocked(t.Owner)
	if t.Created.IsZero() {
		t.Created = h.nowLocked()
	}
	t.Created = t.Created.Round(time.Microsecond)
	if t.Priority == 0 {
		t.Priority = 20
	}
	if t.Weight == 0 {
		t.Weight = 1.0
	}
	if t.Channel == 0 {
		t.Channel = 1
	}
	t.Request = slices.Clone(t.Request)
	t.Schedule = slices.Clone(t.Schedule)
	h.tasks[t.ID] = &t
	return t.ID
}

// SetTaskSchedule replaces a task's schedule, e.g. to make a finished task
// be resubmitted or to fail it.
func (h *KojiHub) SetTaskSchedule(id int, sched ...KojiStateChange) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.tasks[id]; ok {
		t.Schedule = slices.Clone(sched)
	}
}

// TaskState returns a task's state at the hub's current time (-1 if it does
// not exist yet).
func (h *KojiHub) TaskState(id int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tasks[id]
	if !ok {
		return -1
	}
	st, ok := kojiStateAt(t, h.nowLocked())
	if !ok {
		return -1
	}
	return st.state
}

// KojiNightlyOwner owns the image tasks AddNightlyImageTasks creates.
const KojiNightlyOwner = "releng"

// kojiComposeDate finds the date in a compose ID, compiled on first use
// (docs/conventions.md).
var kojiComposeDate = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`-(\d{8})(?:\.[a-z]+)?\.\d+$`) })

// AddNightlyImageTasks adds n top-level image tasks of one nightly compose,
// as Pungi creates them: kiwiBuild, livemedia and osbuildImage in turn,
// owned by KojiNightlyOwner, created one minute apart from 03:00 UTC on the
// compose's date, each carrying release (e.g. "20261122.n.0") and version
// ("Rawhide", "44") where the real plugins put them — except kiwiBuild's
// version, an optional argument Fedora's kiwi tasks leave out (their opts
// are profile, release, optional_arches, repos, use_buildroot_repo): its
// repos URL names the compose instead. kiwiBuild and
// livemedia parents get one child per arch (createKiwiImage,
// createLiveMedia) with the release as third positional argument. sched is
// every task's schedule relative to its creation; by default tasks open
// after a minute and close after 30 more. It returns the parent task IDs.
func (h *KojiHub) AddNightlyImageTasks(composeID, release, version string, n int, sched ...KojiStateChange) []int {
	base := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	if m := kojiComposeDate().FindStringSubmatch(composeID); m != nil {
		if d, err := time.Parse("20060102", m[1]); err == nil {
			base = d.Add(3 * time.Hour)
		}
	}
	if len(sched) == 0 {
		sched = KojiRunSchedule(time.Minute, 30*time.Minute, KojiClosed)
	}
	target, distro := "f"+version, "fedora-"+version
	if strings.EqualFold(version, "rawhide") {
		target, distro = "rawhide", "fedora-rawhide"
	}
	arches := []any{"x86_64", "aarch64"}
	profiles := []string{"Cloud-Base-Generic", "Container-Base", "Server-KVM", "Workstation", "KDE", "IoT"}

	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]int, 0, n)
	for i := range n {
		created := base.Add(time.Duration(i) * time.Minute)
		name := profiles[i%len(profiles)]
		var method, child string
		var req []any
		switch i % 3 {
		case 0:
			method, child = "kiwiBuild", "createKiwiImage"
			req = []any{target, arches, "git+https://pagure.example.invalid/fedora-kiwi-descriptions.git#0123abc", "teams/" + strings.ToLower(name) + ".kiwi",
				map[string]any{"profile": name, "release": release, "optional_arches": []any{"aarch64"},
					"repos": []any{"https://kojipkgs.example.invalid/compose/" + composeID + "/compose/Everything/$arch/os"}, "use_buildroot_repo": true}}
		case 1:
			method, child = "livemedia", "createLiveMedia"
			req = []any{"Fedora-" + name + "-Live", version, arches, target, "fedora-live-" + strings.ToLower(name) + ".ks",
				map[string]any{"release": release, "ksurl": "git+https://pagure.example.invalid/fedora-kickstarts.git#0123abc", "install_tree_url": "https://kojipkgs.example.invalid/compose/" + composeID + "/compose/Everything/$arch/os"}}
		default:
			method = "osbuildImage"
			req = []any{"Fedora-" + name, version, distro, []any{"iot-raw-image"}, target, arches,
				map[string]any{"release": release, "repo": []any{"https://kojipkgs.example.invalid/compose/" + composeID + "/compose/Everything/$arch/os"}}}
		}
		id := h.addTaskLocked(KojiTask{Method: method, Owner: KojiNightlyOwner, Request: req, Created: created, Schedule: sched, Channel: 12, Weight: 4.0})
		ids = append(ids, id)
		if child == "" {
			continue
		}
		// Children finish a second before their parent.
		csched := slices.Clone(sched)
		if last := len(csched) - 1; last > 0 && csched[last].After > time.Second {
			csched[last].After -= time.Second
		}
		for _, a := range arches {
			arch := a.(string)
			creq := []any{"Fedora-" + name, version, release, arch, map[string]any{"name": target}, map[string]any{"name": target + "-build"}, map[string]any{"id": 1}}
			if child == "createKiwiImage" {
				creq = append(creq, req[2], req[3], map[string]any{"profile": name})
			} else {
				creq = append(creq, req[4], map[string]any{})
			}
			h.addTaskLocked(KojiTask{Method: child, Arch: arch, Owner: KojiNightlyOwner, Parent: id, Label: arch, Request: creq, Created: created, Schedule: csched, Channel: 12, Priority: 19, Weight: 2.0})
		}
	}
	return ids
}

// kojiFault is a fault the hub raises. traceback marks a Koji exception
// (as opposed to a raw xmlrpc Fault), which inside a multicall gets the
// non-standard traceback member.
type kojiFault struct {
	code      int
	msg       string
	traceback bool
}

func (f kojiFault) Error() string { return fmt.Sprintf("Fault %d: %s", f.code, f.msg) }

func kojiGeneric(format string, args ...any) kojiFault {
	return kojiFault{code: KojiFaultGeneric, msg: fmt.Sprintf(format, args...), traceback: true}
}

func kojiParamError(format string, args ...any) kojiFault {
	return kojiFault{code: KojiFaultParameter, msg: fmt.Sprintf(format, args...), traceback: true}
}

// SetRandomFaults makes a fraction of the requests fail at random from now
// on (see RandomFaultOptions; by default the kinds include
// FaultXMLRPCFault, a GenericError fault with HTTP 200 as a hub whose
// database failed sends); P 0 turns it off.
func (h *KojiHub) SetRandomFaults(opts RandomFaultOptions) {
	h.random.set("koji", opts, FaultXMLRPCFault)
}

// RandomFaultCounts returns how many requests each kind of random fault
// hit.
func (h *KojiHub) RandomFaultCounts() map[FaultKind]int { return h.random.counts() }

// XMLRPCFaultRepeats returns how many requests repeated, byte for byte, a
// request a random XML-RPC fault answered, within d of that fault (d <= 0:
// at any time). A client that never retries a fault by itself makes none
// within its own retry delays; a caller that asks again much later (a
// stage run again after its error) is not retrying the fault.
func (h *KojiHub) XMLRPCFaultRepeats(d time.Duration) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.repeats {
		if d <= 0 || r <= d {
			n++
		}
	}
	return n
}

// ServeHTTP answers one XML-RPC request, through the random faults if set.
func (h *KojiHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := h.random.get()
	if f == nil {
		h.serve(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, kojiMaxRequestLength+1))
	r.Body = io.NopCloser(bytes.NewReader(body))
	sum := fnv.New64a()
	sum.Write(body)
	key := sum.Sum64()
	k := f.pick()
	h.mu.Lock()
	if at, ok := h.faulted[key]; ok {
		h.repeats = append(h.repeats, time.Since(at))
		delete(h.faulted, key)
	}
	if k == FaultXMLRPCFault {
		if h.faulted == nil {
			h.faulted = map[uint64]time.Time{}
		}
		h.faulted[key] = time.Now()
	}
	h.mu.Unlock()
	switch {
	case k == "":
		h.serve(w, r)
	case k == FaultXMLRPCFault:
		h.requests.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("Koji-Version", KojiVersion)
		kojiWrite(w, kojiFaultResponse(kojiFault{code: KojiFaultGeneric, traceback: true,
			msg: "injected fault: psycopg2.OperationalError: server closed the connection unexpectedly"}))
	case k.before():
		h.requests.Add(1)
		f.serveBefore(w, k)
	default:
		f.serveAfter(w, r, k, http.HandlerFunc(h.serve))
	}
}

// serve answers one XML-RPC request. The body is read before the
// injected latency, so that the server notices a client that gives up
// (net/http watches the connection only once the body is consumed).
func (h *KojiHub) serve(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	var body []byte
	var readErr error
	if r.Method == http.MethodPost {
		body, readErr = io.ReadAll(io.LimitReader(r.Body, kojiMaxRequestLength+1))
	}
	h.mu.Lock()
	latency := h.latency
	h.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	h.mu.Lock()
	var status int
	if len(h.httpFailures) > 0 {
		status, h.httpFailures = h.httpFailures[0], h.httpFailures[1:]
	}
	retryAfter := h.retryAfter
	var fault *kojiFault
	if status == 0 && len(h.faults) > 0 {
		f := h.faults[0]
		h.faults = h.faults[1:]
		fault = &f
	}
	h.mu.Unlock()
	if status != 0 {
		if retryAfter != "" && (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) {
			w.Header().Set("Retry-After", retryAfter)
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	if readErr != nil {
		kojiInvalid(w, "could not read body: %v", readErr)
		return
	}
	if len(body) > kojiMaxRequestLength {
		kojiInvalid(w, "request too long")
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		kojiInvalid(w, "empty request")
		return
	}
	method, params, err := kojiParseMethodCall(body)
	if err != nil {
		kojiInvalid(w, "%v", err)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Koji-Version", KojiVersion)
	if fault != nil {
		kojiWrite(w, kojiFaultResponse(*fault))
		return
	}
	var result any
	if method == "multiCall" || method == "system.multicall" {
		result, err = h.multiCall(params)
	} else {
		result, err = h.call(method, params)
	}
	if err != nil {
		var f kojiFault
		if !errors.As(err, &f) {
			f = kojiFault{code: 1, msg: err.Error(), traceback: true}
		}
		kojiWrite(w, kojiFaultResponse(f))
		return
	}
	kojiWrite(w, kojiResponse(result))
}

// kojiWrite sends an XML-RPC answer with its Content-Length, as the hub's
// WSGI application does.
func kojiWrite(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func kojiInvalid(w http.ResponseWriter, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "Invalid request: "+format+"\n", args...)
}

// multiCall runs each call on its own, as the hub does: a failing call
// becomes a fault struct in its slot and never fails the others.
func (h *KojiHub) multiCall(params []any) (any, error) {
	args, err := kojiBind("multiCall", params, []string{"calls"}, 1)
	if err != nil {
		return nil, err
	}
	calls, ok := args[0].([]any)
	if !ok {
		return nil, kojiParamError("multiCall: calls must be an array")
	}
	out := make([]any, 0, len(calls))
	for _, c := range calls {
		res, err := func() (any, error) {
			m, ok := c.(map[string]any)
			if !ok {
				return nil, kojiFault{code: 1, msg: "multicall: each call must be a struct", traceback: true}
			}
			name, _ := m["methodName"].(string)
			p, ok := m["params"].([]any)
			if !ok && m["params"] != nil {
				return nil, kojiFault{code: 1, msg: "multicall: params must be an array", traceback: true}
			}
			if name == "multiCall" || name == "system.multicall" {
				return nil, kojiGeneric("multicall may not be nested")
			}
			return h.call(name, p)
		}()
		if err != nil {
			var f kojiFault
			if !errors.As(err, &f) {
				f = kojiFault{code: 1, msg: err.Error(), traceback: true}
			}
			out = append(out, kojiFaultStruct(f))
			continue
		}
		out = append(out, []any{res})
	}
	return out, nil
}

func kojiFaultStruct(f kojiFault) kojiStruct {
	s := kojiStruct{{"faultCode", f.code}, {"faultString", f.msg}}
	if f.traceback {
		s = append(s, kojiMember{"traceback", []any{
			"Traceback (most recent call last):\n",
			"  File \"/usr/share/koji-hub/kojixmlrpc.py\", line 263, in _dispatch\n",
			fmt.Sprintf("koji.GenericError: %s\n", f.msg),
		}})
	}
	return s
}

// call runs one method. Keyword arguments arrive as a trailing
// {"__starstar": true, ...} struct, which is stripped here as the hub does.
func (h *KojiHub) call(method string, params []any) (any, error) {
	h.calls.Add(1)
	h.mu.Lock()
	h.callCounts[method]++
	if q := h.callFaults[method]; len(q) > 0 {
		f := q[0]
		h.callFaults[method] = q[1:]
		h.mu.Unlock()
		return nil, f
	}
	h.mu.Unlock()
	var kwargs map[string]any
	if n := len(params); n > 0 {
		if m, ok := params[n-1].(map[string]any); ok {
			if ss, ok := m["__starstar"].(bool); ok && ss {
				kwargs = make(map[string]any, len(m))
				for k, v := range m {
					if k != "__starstar" {
						kwargs[k] = v
					}
				}
				params = params[:n-1]
			}
		}
	}
	bind := func(names []string, required int) ([]any, error) {
		return kojiBindKw(method, params, kwargs, names, required)
	}
	switch method {
	case "listTasks":
		a, err := bind([]string{"opts", "queryOpts"}, 0)
		if err != nil {
			return nil, err
		}
		return h.listTasks(a[0], a[1])
	case "getTaskInfo":
		a, err := bind([]string{"task_id", "request", "strict"}, 1)
		if err != nil {
			return nil, err
		}
		return h.getTaskInfo(a[0], kojiTruthy(a[1]), kojiTruthy(a[2]))
	case "getTaskChildren":
		a, err := bind([]string{"task_id", "request", "strict"}, 1)
		if err != nil {
			return nil, err
		}
		return h.getTaskChildren(a[0], kojiTruthy(a[1]), kojiTruthy(a[2]))
	case "getUser":
		a, err := bind([]string{"userInfo", "strict", "krb_princs", "groups"}, 0)
		if err != nil {
			return nil, err
		}
		return h.getUser(a[0], kojiTruthy(a[1]))
	case "getLoggedInUser":
		if _, err := bind(nil, 0); err != nil {
			return nil, err
		}
		return nil, nil
	case "getAPIVersion":
		if _, err := bind(nil, 0); err != nil {
			return nil, err
		}
		return 1, nil
	case "getKojiVersion":
		if _, err := bind(nil, 0); err != nil {
			return nil, err
		}
		return KojiVersion, nil
	case "hello":
		return "Hello World", nil
	case "echo":
		// echo(*args) returns its positional arguments.
		if len(kwargs) > 0 {
			return nil, kojiParamError("echo() got an unexpected keyword argument")
		}
		if params == nil {
			params = []any{}
		}
		return params, nil
	}
	return nil, kojiGeneric("Invalid method: %s", method)
}

// kojiBind matches positional parameters to a Python signature.
func kojiBind(method string, params []any, names []string, required int) ([]any, error) {
	return kojiBindKw(method, params, nil, names, required)
}

func kojiBindKw(method string, params []any, kwargs map[string]any, names []string, required int) ([]any, error) {
	if len(params) > len(names) {
		return nil, kojiParamError("%s() takes at most %d arguments (%d given)", method, len(names), len(params))
	}
	out := make([]any, len(names))
	set := make([]bool, len(names))
	for i, p := range params {
		out[i], set[i] = p, true
	}
	for k, v := range kwargs {
		i := slices.Index(names, k)
		if i < 0 {
			return nil, kojiParamError("%s() got an unexpected keyword argument '%s'", method, k)
		}
		if set[i] {
			return nil, kojiParamError("%s() got multiple values for argument '%s'", method, k)
		}
		out[i], set[i] = v, true
	}
	for i := range required {
		if !set[i] {
			return nil, kojiParamError("%s() missing required argument: '%s'", method, names[i])
		}
	}
	return out, nil
}

// kojiTruthy is Python's truth test for the values XML-RPC carries.
func kojiTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

type kojiTaskState struct {
	state             int
	start, completion time.Time
}

// kojiStateAt evaluates a task's schedule at now; ok is false before the
// task exists.
func kojiStateAt(t *KojiTask, now time.Time) (kojiTaskState, bool) {
	if now.Before(t.Created) {
		return kojiTaskState{}, false
	}
	st := kojiTaskState{state: KojiFree}
	for _, c := range t.Schedule {
		at := t.Created.Add(c.After)
		if at.After(now) {
			break
		}
		st.state = c.State
		switch c.State {
		case KojiOpen:
			if st.start.IsZero() {
				st.start = at
			}
		case KojiClosed, KojiCanceled, KojiFailed:
			st.completion = at
		case KojiFree:
			st.start, st.completion = time.Time{}, time.Time{}
		}
	}
	return st, true
}

func kojiFinished(state int) bool {
	return state == KojiClosed || state == KojiCanceled || state == KojiFailed
}

// existingLocked returns the tasks that exist now, in ID order.
func (h *KojiHub) existingLocked(now time.Time) []*KojiTask {
	out := make([]*KojiTask, 0, len(h.tasks))
	for _, t := range h.tasks {
		if !now.Before(t.Created) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// kojiTaskColumns is the order of the hub's task fields (Task.fields), then
// the extra listTasks columns.
var kojiTaskColumns = []string{"id", "state", "create_time", "create_ts", "start_time", "start_ts",
	"completion_time", "completion_ts", "channel_id", "host_id", "parent", "label", "waiting", "awaited",
	"owner", "method", "arch", "priority", "weight"}

// rowLocked renders a task as the hub does. request and result are added
// when asked for: decoded, or as the raw XML the database holds.
func (h *KojiHub) rowLocked(t *KojiTask, now time.Time, withRequest, listExtras, decode bool) kojiStruct {
	st, _ := kojiStateAt(t, now)
	row := kojiStruct{
		{"id", t.ID},
		{"state", st.state},
	}
	row = append(row, h.timeMembers("create", t.Created)...)
	row = append(row, h.timeMembers("start", st.start)...)
	row = append(row, h.timeMembers("completion", st.completion)...)
	var host, parent, label, waiting, awaited any
	if st.state != KojiFree {
		host = 345
	}
	if t.Parent != 0 {
		parent = t.Parent
		awaited = !kojiFinished(st.state)
	}
	if t.Label != "" {
		label = t.Label
	}
	if st.state == KojiOpen {
		waiting = t.Parent == 0
	} else if st.state != KojiFree {
		waiting = false
	}
	owner := h.users[t.Owner]
	row = append(row,
		kojiMember{"channel_id", t.Channel},
		kojiMember{"host_id", host},
		kojiMember{"parent", parent},
		kojiMember{"label", label},
		kojiMember{"waiting", waiting},
		kojiMember{"awaited", awaited},
		kojiMember{"owner", owner.id},
		kojiMember{"method", t.Method},
		kojiMember{"arch", t.Arch},
		kojiMember{"priority", t.Priority},
		kojiMember{"weight", t.Weight},
	)
	if withRequest {
		if decode {
			row = append(row, kojiMember{"request", t.Request})
		} else {
			row = append(row, kojiMember{"request", string(kojiDumpCall(t.Method, t.Request))})
		}
	}
	if listExtras {
		var result any
		switch st.state {
		case KojiClosed:
			r := t.Result
			if r == nil {
				r = map[string]any{"task_id": t.ID}
			}
			result = []any{r}
		case KojiFailed:
			result = kojiStruct{{"faultCode", KojiFaultGeneric}, {"faultString", "image build failed"}}
		}
		if !decode && result != nil {
			result = string(kojiResponse(result))
		}
		row = append(row, kojiMember{"result", result}, kojiMember{"owner_name", owner.name}, kojiMember{"owner_type", 0})
	}
	return row
}

// timeMembers renders one timestamp as the hub's pair of fields: the
// isoformat(' ') string in the database's zone and the epoch double, both
// nil when unset.
func (h *KojiHub) timeMembers(prefix string, t time.Time) []kojiMember {
	if t.IsZero() {
		return []kojiMember{{prefix + "_time", nil}, {prefix + "_ts", nil}}
	}
	return []kojiMember{{prefix + "_time", kojiISOFormat(t.In(h.loc))}, {prefix + "_ts", float64(t.UnixMicro()) / 1e6}}
}

// kojiISOFormat is Python's datetime.isoformat(' ') for an aware datetime:
// the fraction only when there are microseconds, the offset as +HH:MM.
func kojiISOFormat(t time.Time) string {
	s := t.Format("2006-01-02 15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s + t.Format("-07:00")
}

// listTasks implements listTasks(opts=None, queryOpts=None) for the keys
// composeci uses and their neighbours.
func (h *KojiHub) listTasks(optsV, qoV any) (any, error) {
	opts, err := kojiOptStruct("opts", optsV)
	if err != nil {
		return nil, err
	}
	qo, err := kojiOptStruct("queryOpts", qoV)
	if err != nil {
		return nil, err
	}
	var preds []func(t *KojiTask, st kojiTaskState) bool
	for _, f := range []string{"arch", "state"} {
		for _, neg := range []bool{false, true} {
			key := f
			if neg {
				key = "not_" + f
			}
			v, ok := opts[key]
			if !ok {
				continue
			}
			list, ok := v.([]any)
			if !ok {
				return nil, kojiFault{code: 1, msg: fmt.Sprintf("ProgrammingError: %s must be a list", key), traceback: true}
			}
			pred := func(t *KojiTask, st kojiTaskState) bool {
				var val any = t.Arch
				if f == "state" {
					val = int64(st.state)
				}
				in := slices.ContainsFunc(list, func(x any) bool { return kojiEqual(x, val) })
				return in != neg
			}
			preds = append(preds, pred)
		}
	}
	for _, f := range []string{"owner", "parent", "host_id", "channel_id"} {
		for _, neg := range []bool{false, true} {
			key := f
			if neg {
				key = "not_" + f
			}
			v, ok := opts[key]
			if !ok {
				continue
			}
			pred := func(t *KojiTask, st kojiTaskState) bool {
				var field any
				switch f {
				case "owner":
					field = int64(h.users[t.Owner].id)
				case "parent":
					if t.Parent != 0 {
						field = int64(t.Parent)
					}
				case "host_id":
					if st.state != KojiFree {
						field = int64(345)
					}
				case "channel_id":
					field = int64(t.Channel)
				}
				var match bool
				switch x := v.(type) {
				case nil:
					match = field == nil // IS NULL
				case []any:
					match = field != nil && slices.ContainsFunc(x, func(y any) bool { return kojiEqual(y, field) })
				default:
					match = field != nil && kojiEqual(x, field)
				}
				if neg {
					// SQL: NOT (x = NULL) is NULL, so NULL rows never match a not_ filter
					// unless the filter itself is IS NOT NULL.
					if v == nil {
						return field != nil
					}
					return field != nil && !match
				}
				return match
			}
			preds = append(preds, pred)
		}
	}
	if v, ok := opts["method"]; ok {
		m, ok := v.(string)
		if !ok {
			return nil, kojiFault{code: 1, msg: "ProgrammingError: method must be a string", traceback: true}
		}
		preds = append(preds, func(t *KojiTask, _ kojiTaskState) bool { return t.Method == m })
	}
	for _, tk := range []struct {
		key    string
		before bool
		field  func(t *KojiTask, st kojiTaskState) time.Time
	}{
		{"createdBefore", true, func(t *KojiTask, _ kojiTaskState) time.Time { return t.Created }},
		{"createdAfter", false, func(t *KojiTask, _ kojiTaskState) time.Time { return t.Created }},
		{"startedBefore", true, func(_ *KojiTask, st kojiTaskState) time.Time { return st.start }},
		{"startedAfter", false, func(_ *KojiTask, st kojiTaskState) time.Time { return st.start }},
		{"completeBefore", true, func(_ *KojiTask, st kojiTaskState) time.Time { return st.completion }},
		{"completeAfter", false, func(_ *KojiTask, st kojiTaskState) time.Time { return st.completion }},
		{"completedBefore", true, func(_ *KojiTask, st kojiTaskState) time.Time { return st.completion }},
		{"completedAfter", false, func(_ *KojiTask, st kojiTaskState) time.Time { return st.completion }},
	} {
		v := opts[tk.key]
		if !kojiTruthy(v) {
			continue // the hub tests opts.get(key)
		}
		bound, err := kojiTimeOpt(tk.key, v)
		if err != nil {
			return nil, err
		}
		preds = append(preds, func(t *KojiTask, st kojiTaskState) bool {
			ft := tk.field(t, st)
			if ft.IsZero() {
				return false // NULL compares to nothing
			}
			if tk.before {
				return ft.Before(bound)
			}
			return ft.After(bound)
		})
	}
	decode := kojiTruthy(opts["decode"])

	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.nowLocked()
	var matched []*KojiTask
	for _, t := range h.existingLocked(now) {
		st, _ := kojiStateAt(t, now)
		ok := true
		for _, p := range preds {
			if !p(t, st) {
				ok = false
				break
			}
		}
		if ok {
			matched = append(matched, t)
		}
	}
	rows := make([]kojiStruct, len(matched))
	for i, t := range matched {
		rows[i] = h.rowLocked(t, now, true, true, decode)
	}
	if order, ok := qo["order"]; ok && order != nil {
		s, _ := order.(string)
		if err := kojiSortRows(rows, s); err != nil {
			return nil, err
		}
	} else {
		// No ORDER BY: the database returns rows in whatever order it likes.
		// The fake makes that visible by reversing them.
		slices.Reverse(rows)
	}
	if v, ok := qo["offset"]; ok && v != nil {
		off, _ := v.(int64)
		if int(off) < len(rows) {
			rows = rows[off:]
		} else {
			rows = nil
		}
	}
	if v, ok := qo["limit"]; ok && v != nil {
		lim, _ := v.(int64)
		if int(lim) < len(rows) {
			rows = rows[:lim]
		}
	}
	if kojiTruthy(qo["countOnly"]) {
		return len(rows), nil
	}
	if kojiTruthy(qo["asList"]) {
		out := make([]any, len(rows))
		for i, r := range rows {
			vals := make([]any, len(r))
			for j, m := range r {
				vals[j] = m.v
			}
			out[i] = vals
		}
		return out, nil
	}
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out, nil
}

func kojiOptStruct(name string, v any) (map[string]any, error) {
	switch x := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return x, nil
	case string:
		if x == "" { // <value/> reads as ''; the hub then treats it as no opts
			return map[string]any{}, nil
		}
	}
	return nil, kojiParamError("%s must be a struct", name)
}

// kojiSortRows sorts by a comma-separated list of columns, "-" meaning
// descending; an unknown column is an error as in the hub.
func kojiSortRows(rows []kojiStruct, order string) error {
	type term struct {
		col  string
		desc bool
	}
	var terms []term
	for f := range strings.SplitSeq(order, ",") {
		f = strings.TrimSpace(f)
		desc := strings.HasPrefix(f, "-")
		f = strings.TrimPrefix(f, "-")
		if !slices.Contains(kojiTaskColumns, f) && f != "owner_name" {
			return kojiParamError("Invalid order term: %s", f)
		}
		terms = append(terms, term{f, desc})
	}
	sort.SliceStable(rows, func(i, j int) bool {
		for _, t := range terms {
			c := kojiCompare(rows[i].get(t.col), rows[j].get(t.col))
			if c == 0 {
				continue
			}
			if t.desc {
				return c > 0
			}
			return c < 0
		}
		return false
	})
	return nil
}

// kojiCompare orders values as PostgreSQL does for one column: NULLs last.
func kojiCompare(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	switch x := a.(type) {
	case int:
		return kojiCmp(float64(x), kojiNum(b))
	case float64:
		return kojiCmp(x, kojiNum(b))
	case string:
		y, _ := b.(string)
		return strings.Compare(x, y)
	case bool:
		y, _ := b.(bool)
		return kojiCmp(kojiB2F(x), kojiB2F(y))
	}
	return 0
}

func kojiB2F(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func kojiNum(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return math.NaN()
}

func kojiCmp(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// kojiEqual compares a request value with a column value the way the
// database would after psycopg's adaptation.
func kojiEqual(a, b any) bool {
	switch x := a.(type) {
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(int64)
		return ok && x == float64(y)
	}
	return false
}

// kojiDateTime is what a <dateTime.iso8601> value becomes: the hub gets an
// xmlrpc.client.DateTime object, which its time options reject.
type kojiDateTime string

// kojiTimeOpt converts a time option: a number is UTC epoch seconds, a
// string goes to PostgreSQL (the common shapes are accepted here).
func kojiTimeOpt(key string, v any) (time.Time, error) {
	switch x := v.(type) {
	case float64:
		sec := math.Floor(x)
		us := math.Round((x - sec) * 1e6)
		return time.Unix(int64(sec), int64(us)*1000).UTC(), nil
	case int64:
		return time.Unix(x, 0).UTC(), nil
	case string:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z07:00"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t, nil
			}
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
			if t, err := time.ParseInLocation(layout, x, time.UTC); err == nil {
				return t, nil
			}
		}
		return time.Time{}, kojiFault{code: 1, msg: fmt.Sprintf("DataError: invalid input syntax for type timestamp: %q", x), traceback: true}
	case kojiDateTime:
		return time.Time{}, kojiGeneric("Invalid time for %s: %s (a DateTime object; send epoch seconds)", key, string(x))
	}
	return time.Time{}, kojiGeneric("Invalid type for %s", key)
}

func kojiTaskID(v any) (int, bool) {
	switch x := v.(type) {
	case int64:
		return int(x), true
	case float64:
		return int(x), x == math.Trunc(x)
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

func (h *KojiHub) getTaskInfo(idV any, request, strict bool) (any, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.nowLocked()
	one := func(v any) (any, error) {
		id, ok := kojiTaskID(v)
		if !ok {
			return nil, kojiParamError("Invalid type for task_id")
		}
		t, ok := h.tasks[id]
		if ok && now.Before(t.Created) {
			ok = false
		}
		if !ok {
			if strict {
				return nil, kojiGeneric("No such task id: %d", id)
			}
			return nil, nil
		}
		return h.rowLocked(t, now, request, false, true), nil
	}
	if list, ok := idV.([]any); ok {
		out := make([]any, 0, len(list))
		for _, v := range list {
			r, err := one(v)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	return one(idV)
}

func (h *KojiHub) getTaskChildren(idV any, request, strict bool) (any, error) {
	id, ok := kojiTaskID(idV)
	if !ok {
		return nil, kojiParamError("Invalid type for task_id")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.nowLocked()
	if t, ok := h.tasks[id]; strict && (!ok || now.Before(t.Created)) {
		return nil, kojiGeneric("No such task id: %d", id)
	}
	out := []any{}
	for _, t := range h.existingLocked(now) {
		if t.Parent == id {
			out = append(out, h.rowLocked(t, now, request, false, true))
		}
	}
	return out, nil
}

func (h *KojiHub) getUser(info any, strict bool) (any, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var (
		u  kojiUser
		ok bool
	)
	switch x := info.(type) {
	case nil:
		return nil, kojiGeneric("No user provided")
	case int64:
		u, ok = h.userIDs[int(x)]
	case string:
		u, ok = h.users[x]
	case map[string]any:
		if id, has := x["id"].(int64); has {
			u, ok = h.userIDs[int(id)]
		} else if name, has := x["name"].(string); has {
			u, ok = h.users[name]
		}
	default:
		return nil, kojiParamError("Invalid type for userInfo")
	}
	if !ok {
		if strict {
			return nil, kojiGeneric("No such user: %v", info)
		}
		return nil, nil
	}
	return kojiStruct{{"id", u.id}, {"name", u.name}, {"status", 0}, {"usertype", 0}, {"krb_principals", []any{}}}, nil
}

// ---- XML-RPC as CPython writes and reads it ----

// kojiMember and kojiStruct are an ordered struct: Python dicts keep
// insertion order, and the hub's rows come out in column order.
type kojiMember struct {
	k string
	v any
}

type kojiStruct []kojiMember

func (s kojiStruct) get(k string) any {
	for _, m := range s {
		if m.k == k {
			return m.v
		}
	}
	return nil
}

var kojiEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// kojiResponse is xmlrpc.client.dumps((v,), methodresponse=True,
// allow_none=True) with Koji's <i8> extension.
func kojiResponse(v any) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n")
	kojiDump(&b, v)
	b.WriteString("</param>\n</params>\n</methodResponse>\n")
	return b.Bytes()
}

func kojiFaultResponse(f kojiFault) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n")
	kojiDump(&b, kojiStruct{{"faultCode", f.code}, {"faultString", f.msg}})
	b.WriteString("</fault>\n</methodResponse>\n")
	return b.Bytes()
}

// kojiDumpCall is xmlrpc.client.dumps(args, methodname=m): the raw form in
// which the hub stores a task's request.
func kojiDumpCall(method string, args []any) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodCall>\n<methodName>")
	b.WriteString(kojiEscaper.Replace(method))
	b.WriteString("</methodName>\n<params>\n")
	for _, a := range args {
		b.WriteString("<param>\n")
		kojiDump(&b, a)
		b.WriteString("</param>\n")
	}
	b.WriteString("</params>\n</methodCall>\n")
	return b.Bytes()
}

// kojiDump writes one value exactly as CPython's Marshaller does.
func kojiDump(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("<value><nil/></value>")
	case bool:
		if x {
			b.WriteString("<value><boolean>1</boolean></value>\n")
		} else {
			b.WriteString("<value><boolean>0</boolean></value>\n")
		}
	case int:
		kojiDumpInt(b, int64(x))
	case int64:
		kojiDumpInt(b, x)
	case float64:
		b.WriteString("<value><double>" + kojiFloatRepr(x) + "</double></value>\n")
	case string:
		b.WriteString("<value><string>" + kojiEscaper.Replace(x) + "</string></value>\n")
	case []byte:
		b.WriteString("<value><base64>\n" + base64.StdEncoding.EncodeToString(x) + "\n</base64></value>\n")
	case []any:
		b.WriteString("<value><array><data>\n")
		for _, e := range x {
			kojiDump(b, e)
		}
		b.WriteString("</data></array></value>\n")
	case []string:
		b.WriteString("<value><array><data>\n")
		for _, e := range x {
			kojiDump(b, e)
		}
		b.WriteString("</data></array></value>\n")
	case kojiStruct:
		b.WriteString("<value><struct>\n")
		for _, m := range x {
			b.WriteString("<member>\n<name>" + kojiEscaper.Replace(m.k) + "</name>\n")
			kojiDump(b, m.v)
			b.WriteString("</member>\n")
		}
		b.WriteString("</struct></value>\n")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := make(kojiStruct, len(keys))
		for i, k := range keys {
			s[i] = kojiMember{k, x[k]}
		}
		kojiDump(b, s)
	case kojiDateTime:
		// Only reachable through echo: the hub would send the DateTime back.
		b.WriteString("<value><dateTime.iso8601>" + string(x) + "</dateTime.iso8601></value>\n")
	default:
		kojiDump(b, fmt.Sprint(x))
	}
}

// kojiDumpInt is Koji's ExtendedMarshaller.dump_int: <int> within int32,
// <i8> beyond.
func kojiDumpInt(b *bytes.Buffer, n int64) {
	if n > math.MaxInt32 || n < math.MinInt32 {
		b.WriteString("<value><i8>" + strconv.FormatInt(n, 10) + "</i8></value>\n")
		return
	}
	b.WriteString("<value><int>" + strconv.FormatInt(n, 10) + "</int></value>\n")
}

// kojiFloatRepr is Python's repr(float): the shortest round-tripping
// digits, ".0" on integral values, exponent form below 1e-4 and from 1e16.
func kojiFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// kojiParseMethodCall reads a methodCall as the hub's parser does: <nil/>
// and <ex:nil/> are None, <i8>/<ex:i8>/<int>/<i4> are ints of any size,
// <value/> and untyped text are strings, a <param> without a value is
// dropped, and no <params> means no arguments.
func kojiParseMethodCall(body []byte) (string, []any, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var method string
	var params []any
	seenCall := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("bad XML: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "methodCall":
			seenCall = true
		case "methodName":
			s, err := kojiText(d)
			if err != nil {
				return "", nil, err
			}
			method = strings.TrimSpace(s)
		case "params":
		case "param":
			// A value, or nothing (then the parameter is silently dropped).
			for {
				tok, err := d.Token()
				if err != nil {
					return "", nil, fmt.Errorf("bad XML: %w", err)
				}
				if e, ok := tok.(xml.StartElement); ok {
					if e.Name.Local != "value" {
						return "", nil, fmt.Errorf("unexpected <%s> in <param>", e.Name.Local)
					}
					v, err := kojiParseValue(d)
					if err != nil {
						return "", nil, err
					}
					params = append(params, v)
					continue
				}
				if _, ok := tok.(xml.EndElement); ok {
					break
				}
			}
		default:
			return "", nil, fmt.Errorf("unexpected <%s>", se.Name.Local)
		}
	}
	if !seenCall || method == "" {
		return "", nil, errors.New("not an XML-RPC methodCall")
	}
	return method, params, nil
}

// kojiText reads character data up to the end of the current element.
func kojiText(d *xml.Decoder) (string, error) {
	var sb strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("bad XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("unexpected <%s> in text", t.Name.Local)
		}
	}
}

// kojiParseValue reads a value after its <value> start tag, up to and
// including </value>.
func kojiParseValue(d *xml.Decoder) (any, error) {
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("bad XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			return text.String(), nil // untyped: a string; <value/> is ''
		case xml.StartElement:
			v, err := kojiParseTyped(d, t.Name.Local)
			if err != nil {
				return nil, err
			}
			// Skip to </value>.
			for {
				tok, err := d.Token()
				if err != nil {
					return nil, fmt.Errorf("bad XML: %w", err)
				}
				if _, ok := tok.(xml.EndElement); ok {
					return v, nil
				}
				if s, ok := tok.(xml.StartElement); ok {
					return nil, fmt.Errorf("unexpected <%s> after a value", s.Name.Local)
				}
			}
		}
	}
}

func kojiParseTyped(d *xml.Decoder, typ string) (any, error) {
	switch typ {
	case "nil":
		_, err := kojiText(d)
		return nil, err
	case "int", "i4", "i8":
		s, err := kojiText(d)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad <%s>: %w", typ, err)
		}
		return n, nil
	case "boolean":
		s, err := kojiText(d)
		if err != nil {
			return nil, err
		}
		switch s {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return nil, fmt.Errorf("bad boolean value %q", s)
	case "double":
		s, err := kojiText(d)
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("bad <double>: %w", err)
		}
		return f, nil
	case "string":
		return kojiText(d)
	case "base64":
		s, err := kojiText(d)
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	case "dateTime.iso8601":
		s, err := kojiText(d)
		return kojiDateTime(s), err
	case "array":
		out := []any{}
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("bad XML: %w", err)
			}
			switch t := tok.(type) {
			case xml.StartElement:
				switch t.Name.Local {
				case "data":
				case "value":
					v, err := kojiParseValue(d)
					if err != nil {
						return nil, err
					}
					out = append(out, v)
				default:
					return nil, fmt.Errorf("unexpected <%s> in array", t.Name.Local)
				}
			case xml.EndElement:
				if t.Name.Local == "array" {
					return out, nil
				}
			}
		}
	case "struct":
		out := map[string]any{}
		var name string
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("bad XML: %w", err)
			}
			switch t := tok.(type) {
			case xml.StartElement:
				switch t.Name.Local {
				case "member":
					name = ""
				case "name":
					name, err = kojiText(d)
					if err != nil {
						return nil, err
					}
				case "value":
					v, err := kojiParseValue(d)
					if err != nil {
						return nil, err
					}
					out[name] = v
				default:
					return nil, fmt.Errorf("unexpected <%s> in struct", t.Name.Local)
				}
			case xml.EndElement:
				if t.Name.Local == "struct" {
					return out, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("unknown XML-RPC type <%s>", typ)
}
