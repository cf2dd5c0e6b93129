package fakefedora

import (
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FaultKind is one way a remote service fails a request.
type FaultKind string

// The kinds of random faults. The first four come before the request is
// processed: nothing happened. Timeout and Truncated come after: the
// server acted (a POST created its jobs) and the client never got the
// answer. XMLRPCFault is the Koji hub's own: HTTP 200 with a <fault>.
const (
	FaultHTTP500     FaultKind = "http-500"
	FaultHTTP502     FaultKind = "http-502"
	FaultHTTP503     FaultKind = "http-503"
	FaultTooMany     FaultKind = "http-429"  // with Retry-After
	FaultTimeout     FaultKind = "timeout"   // held until the client gives up
	FaultTruncated   FaultKind = "truncated" // a 200 cut mid-body, connection closed
	FaultXMLRPCFault FaultKind = "xmlrpc-fault"
)

// HTTPFaultKinds are the kinds every fake HTTP server can inject.
var HTTPFaultKinds = []FaultKind{FaultHTTP500, FaultHTTP502, FaultHTTP503, FaultTooMany, FaultTimeout, FaultTruncated}

// RandomFaultOptions configure the random faults of a fake server.
type RandomFaultOptions struct {
	// Seed makes the sequence of decisions reproducible: the n-th request
	// a server receives gets the same fault for the same seed. (Which
	// request is the n-th depends on the client's concurrency.)
	Seed uint64
	// P is the fraction of requests that fail, 0 to 1.
	P float64
	// Kinds to choose from, evenly; default HTTPFaultKinds, plus
	// FaultXMLRPCFault for the Koji hub.
	Kinds []FaultKind
	// RetryAfter is sent with 429 and 503 answers. Default "0"; "-" sends
	// none.
	RetryAfter string
	// Hold bounds how long a timeout holds a request whose client does not
	// give up; the connection is then closed without an answer. Default 1
	// minute.
	Hold time.Duration
}

// faultSwitch holds a fake server's random faults, switched on and off
// while it serves: none until set.
type faultSwitch struct{ cur atomic.Pointer[randomFaults] }

// set switches server's random faults to opts (off when opts.P is 0),
// extra kinds added to the defaults.
func (s *faultSwitch) set(server string, opts RandomFaultOptions, extra ...FaultKind) {
	if opts.P <= 0 {
		s.cur.Store(nil)
		return
	}
	s.cur.Store(newRandomFaults(server, opts, extra...))
}

// get returns the faults in force, nil for none.
func (s *faultSwitch) get() *randomFaults { return s.cur.Load() }

// counts returns how many requests each kind of fault hit.
func (s *faultSwitch) counts() map[FaultKind]int { return s.get().snapshot() }

// randomFaults decides, request by request, whether a server fails it.
type randomFaults struct {
	mu     sync.Mutex
	rng    *rand.Rand
	opts   RandomFaultOptions
	counts map[FaultKind]int
}

func newRandomFaults(server string, opts RandomFaultOptions, extra ...FaultKind) *randomFaults {
	if len(opts.Kinds) == 0 {
		opts.Kinds = append(append([]FaultKind{}, HTTPFaultKinds...), extra...)
	}
	if opts.RetryAfter == "" {
		opts.RetryAfter = "0"
	}
	if opts.Hold <= 0 {
		opts.Hold = time.Minute
	}
	h := fnv.New64a()
	h.Write([]byte(server))
	return &randomFaults{rng: rand.New(rand.NewPCG(opts.Seed, h.Sum64())), opts: opts, counts: map[FaultKind]int{}}
}

// pick returns the fault for the next request, or "" for none. A nil
// randomFaults never faults.
func (f *randomFaults) pick() FaultKind {
	if f == nil {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() >= f.opts.P {
		return ""
	}
	k := f.opts.Kinds[f.rng.IntN(len(f.opts.Kinds))]
	f.counts[k]++
	return k
}

func (f *randomFaults) snapshot() map[FaultKind]int {
	if f == nil {
		return map[FaultKind]int{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

// before reports whether k fails a request before it is processed.
func (k FaultKind) before() bool {
	switch k {
	case FaultHTTP500, FaultHTTP502, FaultHTTP503, FaultTooMany:
		return true
	}
	return false
}

// serveBefore answers a fault of a kind that comes before processing.
func (f *randomFaults) serveBefore(w http.ResponseWriter, k FaultKind) {
	status := map[FaultKind]int{FaultHTTP500: 500, FaultHTTP502: 502, FaultHTTP503: 503, FaultTooMany: 429}[k]
	if (status == 429 || status == 503) && f.opts.RetryAfter != "-" {
		w.Header().Set("Retry-After", f.opts.RetryAfter)
	}
	http.Error(w, "injected fault: "+http.StatusText(status), status)
}

// serveAfter processes r with next, then loses the answer as k says: holds
// it until the client gives up (or Hold passes, then closes the
// connection), or sends the status and headers with a Content-Length
// that the body written falls short of, and closes the connection.
func (f *randomFaults) serveAfter(w http.ResponseWriter, r *http.Request, k FaultKind, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	switch k {
	case FaultTimeout:
		// Only once the body is read does the server watch the
		// connection, and see a client that gives up.
		_, _ = io.Copy(io.Discard, r.Body)
		t := time.NewTimer(f.opts.Hold)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler) // no answer, ever
	case FaultTruncated:
		body := rec.Body.Bytes()
		for key, v := range rec.Header() {
			w.Header()[key] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
		w.WriteHeader(rec.Code)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body[:len(body)/2])
		}
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler) // the rest never comes
	}
}

// withRandomFaults wraps next with the faults f picks; nil f (read at each
// request through get) passes every request.
func withRandomFaults(get func() *randomFaults, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := get()
		switch k := f.pick(); {
		case k == "":
			next.ServeHTTP(w, r)
		case k.before():
			f.serveBefore(w, k)
		default:
			f.serveAfter(w, r, k, next)
		}
	})
}
