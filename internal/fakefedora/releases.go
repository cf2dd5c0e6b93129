package fakefedora

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
)

// ReleaseDataPath is where Fedora QA publishes its release data on
// fedorapeople.org, and where ReleaseData serves it.
const ReleaseDataPath = "/groups/qa/metadata/release.json"

// ReleaseData is Fedora QA's release metadata
// (https://fedorapeople.org/groups/qa/metadata/release.json): which Fedora
// releases are stable and which are Branched, as {"fedora": {"stable": [42,
// 43], "branched": [44]}} (docs/protocols.md, section (i)). It can also
// answer with an HTTP error or a body that is not release data.
type ReleaseData struct {
	mu               sync.Mutex
	stable, branched []int
	status           int    // answer this status instead (0: none)
	body             string // with status 200: serve this instead
	srv              *httptest.Server
	requests         atomic.Int64
}

// NewReleaseData returns release data saying stable and branched; serve it
// with Start or as a handler.
func NewReleaseData(stable, branched []int) *ReleaseData {
	d := &ReleaseData{}
	d.Set(stable, branched)
	return d
}

// Set changes the releases, as Fedora QA does when Fedora releases or
// branches, and clears SetBroken.
func (d *ReleaseData) Set(stable, branched []int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stable, d.branched = append([]int{}, stable...), append([]int{}, branched...)
	d.status, d.body = 0, ""
}

// SetBroken makes the file answer HTTP status with body (a 404, a 500, or a
// 200 with a body that is not release data); Set mends it.
func (d *ReleaseData) SetBroken(status int, body string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status, d.body = status, body
}

// Start serves the release data on 127.0.0.1 and returns its URL. Close
// stops it.
func (d *ReleaseData) Start() string {
	d.srv = httptest.NewServer(d)
	return d.URL()
}

// URL is the address of release.json on a started server.
func (d *ReleaseData) URL() string { return d.srv.URL + ReleaseDataPath }

// Close stops a started server.
func (d *ReleaseData) Close() {
	if d.srv != nil {
		d.srv.Close()
	}
}

// Requests returns how many times release.json was asked for.
func (d *ReleaseData) Requests() int64 { return d.requests.Load() }

// ServeHTTP serves release.json.
func (d *ReleaseData) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != ReleaseDataPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	d.requests.Add(1)
	d.mu.Lock()
	status, body := d.status, d.body
	doc := map[string]any{"fedora": map[string]any{"stable": d.stable, "branched": d.branched}}
	d.mu.Unlock()
	switch {
	case status == 0:
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(doc)
		w.Write(b)
	case status == http.StatusOK:
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, body)
	default:
		http.Error(w, body, status)
	}
}
