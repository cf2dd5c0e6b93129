package koji_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind/koji"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
)

// TestDecodeKoloWorkarounds feeds the decoder the shapes kolo/xmlrpc gets
// wrong or surprising, over real HTTP, and checks what Call returns.
func TestDecodeKoloWorkarounds(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  any
	}{
		{"nil as the whole result is nil", "<value><nil/></value>", nil},
		{"nil in a struct is a present key with a nil value, not a zero",
			"<value><struct>\n<member>\n<name>parent</name>\n<value><nil/></value></member>\n<member>\n<name>owner</name>\n<value><int>0</int></value>\n</member>\n</struct></value>",
			map[string]any{"parent": nil, "owner": int64(0)}},
		{"i8 beyond int32 is int64", "<value><i8>5368709120</i8></value>", int64(5368709120)},
		{"int is int64 too", "<value><int>42</int></value>", int64(42)},
		{"an empty struct is an empty map, not a typed nil", "<value><struct>\n</struct></value>", map[string]any{}},
		{"an empty struct nested in an array", "<value><array><data>\n<value><struct>\n</struct></value>\n</data></array></value>", []any{map[string]any{}}},
		{"an empty array is an empty slice", "<value><array><data>\n</data></array></value>", []any{}},
		{"an empty string comes back as nil (kolo leaves the target untouched)", "<value><string></string></value>", nil},
		{"doubles and booleans", "<value><array><data>\n<value><double>4.0</double></value>\n<value><boolean>1</boolean></value>\n</data></array></value>",
			[]any{4.0, true}},
		{"nil inside an array keeps the following elements",
			"<value><array><data>\n<value><int>5</int></value>\n<value><nil/></value><value><string>A</string></value>\n</data></array></value>",
			[]any{int64(5), nil, "A"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := cannedServer(t, http.StatusOK, response(tc.value))
			c := newClient(t, url, koji.Options{})
			got, err := c.Call(context.Background(), "anything")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestDecodeThroughFakeHub round-trips values through the fake hub's
// CPython-style marshaller (echo returns its arguments).
func TestDecodeThroughFakeHub(t *testing.T) {
	h := newHub(t)
	c := newClient(t, h.URL(), koji.Options{})
	when := time.Date(2024, 5, 1, 5, 12, 34, 123456000, time.UTC)
	got, err := c.Call(context.Background(), "echo", int64(5368709120), 7, "a<b>&c", true, 2.5, when, []string{"x86_64"}, map[string]any{"empty": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int64(5368709120), int64(7), "a<b>&c", true, 2.5, 1714540354.123456, []any{"x86_64"}, map[string]any{"empty": map[string]any{}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("echo got %#v\nwant %#v", got, want)
	}
}

// TestEncodeNeverSendsNil proves that Go nil never reaches the wire as
// <value/> (read by the hub as ”) or an empty <param> (dropped), and that
// other values kolo mis-encodes are refused or converted.
func TestEncodeNeverSendsNil(t *testing.T) {
	h := newHub(t)
	c := newClient(t, h.URL(), koji.Options{})
	var nilPtr *int
	tests := []struct {
		name    string
		params  []any
		wantErr error
	}{
		{"a nil parameter", []any{1, nil, "A"}, koji.ErrNilParam},
		{"nil in a struct", []any{map[string]any{"parent": nil}}, koji.ErrNilParam},
		{"nil in an array", []any{[]any{1, nil}}, koji.ErrNilParam},
		{"nil keyword argument", []any{koji.Kwargs{"request": nil}}, koji.ErrNilParam},
		{"a nil pointer", []any{nilPtr}, nil},
		{"unsigned ints", []any{uint64(1) << 40}, nil},
		{"keyword arguments not last", []any{koji.Kwargs{"request": true}, 1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.Requests()
			_, err := c.Call(context.Background(), "echo", tc.params...)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if h.Requests() != before {
				t.Errorf("a request was sent")
			}
		})
	}
	_, err := c.MultiCall(context.Background(), []koji.Call{{Method: "echo", Params: []any{nil}}})
	if !errors.Is(err, koji.ErrNilParam) {
		t.Errorf("multicall with nil: %v", err)
	}
}

func TestKwargsAreSentAsStarstar(t *testing.T) {
	h := newHub(t)
	id := h.AddTask(fakefedora.KojiTask{Method: "kiwiBuild", Created: testNow.Add(-time.Hour), Request: []any{"f44"}})
	c := newClient(t, h.URL(), koji.Options{})
	v, err := c.Call(context.Background(), "getTaskInfo", id, koji.Kwargs{"request": true})
	if err != nil {
		t.Fatal(err)
	}
	if req := v.(map[string]any)["request"]; !reflect.DeepEqual(req, []any{"f44"}) {
		t.Errorf("request = %#v", req)
	}
}

func TestTaskTimes(t *testing.T) {
	task := func(members string) string {
		return response("<value><struct>\n<member>\n<name>id</name>\n<value><int>7</int></value>\n</member>\n" + members + "</struct></value>")
	}
	member := func(name, value string) string {
		return "<member>\n<name>" + name + "</name>\n" + value + "\n</member>\n"
	}
	str := func(s string) string { return "<value><string>" + s + "</string></value>" }
	tests := []struct {
		name    string
		members string
		want    time.Time
	}{
		{"create_ts is preferred over create_time",
			member("create_time", str("2000-01-01 00:00:00+00:00")) + member("create_ts", "<value><double>1714540354.123456</double></value>"),
			time.Date(2024, 5, 1, 5, 12, 34, 123456000, time.UTC)},
		{"time string without fraction", member("create_time", str("2024-05-01 05:12:40+00:00")), time.Date(2024, 5, 1, 5, 12, 40, 0, time.UTC)},
		{"time string with fraction and a negative offset", member("create_time", str("2024-03-12 00:06:28.541893-04:00")), time.Date(2024, 3, 12, 4, 6, 28, 541893000, time.UTC)},
		{"pre-1.22 time string without offset is UTC", member("create_time", str("2017-11-03 12:57:49.431179")), time.Date(2017, 11, 3, 12, 57, 49, 431179000, time.UTC)},
		{"nil ts falls back to the string", member("create_ts", "<value><nil/></value>") + member("create_time", str("2024-05-01 05:12:40+00:00")), time.Date(2024, 5, 1, 5, 12, 40, 0, time.UTC)},
		{"both nil is zero", member("create_ts", "<value><nil/></value>") + member("create_time", "<value><nil/></value>"), time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := cannedServer(t, http.StatusOK, task(tc.members))
			c := newClient(t, url, koji.Options{})
			got, err := c.GetTaskInfo(context.Background(), 7)
			if err != nil {
				t.Fatal(err)
			}
			if !got.CreateTime.Equal(tc.want) {
				t.Errorf("CreateTime %v, want %v", got.CreateTime, tc.want)
			}
		})
	}
	url, _ := cannedServer(t, http.StatusOK, task(member("create_time", str("yesterday"))))
	c := newClient(t, url, koji.Options{})
	if _, err := c.GetTaskInfo(context.Background(), 7); err == nil {
		t.Error("an unreadable time is not an error")
	}
}

func TestTaskFromFakeHub(t *testing.T) {
	h := newHub(t)
	created := testNow.Add(-2*time.Hour + 250*time.Microsecond)
	ids := h.AddNightlyImageTasks("Fedora-Rawhide-20261123.n.0", "20261123.n.0", "Rawhide", 1)
	id := h.AddTask(fakefedora.KojiTask{Method: "livemedia", Owner: "releng", Created: created,
		Schedule: fakefedora.KojiRunSchedule(time.Minute, time.Hour, fakefedora.KojiFailed), Request: []any{"Fedora-KDE-Live", "44", []any{"x86_64"}, "f44", "kde.ks", map[string]any{"release": "20261123.n.0"}}})
	c := newClient(t, h.URL(), koji.Options{})
	ctx := context.Background()
	task, err := c.GetTaskInfo(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := koji.Task{ID: id, Method: "livemedia", State: koji.StateFailed, Arch: "noarch", Owner: h.AddUser("releng"), HostID: 345, ChannelID: 1, Priority: 20, Weight: 1,
		CreateTime: created, StartTime: created.Add(time.Minute), CompletionTime: created.Add(time.Hour + time.Minute), Request: task.Request}
	if !reflect.DeepEqual(task, want) {
		t.Errorf("got  %+v\nwant %+v", task, want)
	}
	if task.Release() != "20261123.n.0" || task.Version() != "44" {
		t.Errorf("release %q version %q", task.Release(), task.Version())
	}
	if _, err := c.GetTaskInfo(ctx, 1); !errors.Is(err, koji.ErrNotFound) {
		t.Errorf("unknown task: %v", err)
	}
	kids, err := c.GetTaskChildren(ctx, ids[0])
	if err != nil || len(kids) != 2 {
		t.Fatalf("children: %v %v", kids, err)
	}
	for _, k := range kids {
		if k.Parent != ids[0] || k.TopLevel() || k.Release() != "20261123.n.0" || k.Version() != "Rawhide" {
			t.Errorf("child %+v", k)
		}
	}
	infos, err := c.GetTaskInfos(ctx, []int{ids[0], id, 42})
	if err != nil || len(infos) != 2 || infos[id].State != koji.StateFailed {
		t.Errorf("GetTaskInfos: %v %v", infos, err)
	}
}

func TestGetUser(t *testing.T) {
	h := newHub(t)
	rid := h.AddUser("releng")
	c := newClient(t, h.URL(), koji.Options{})
	ctx := context.Background()
	for range 2 {
		u, err := c.GetUser(ctx, "releng")
		if err != nil || u.ID != rid || u.Name != "releng" || u.KrbPrincipals != nil {
			t.Fatalf("GetUser: %+v %v", u, err)
		}
	}
	if got := h.CallCount("getUser"); got != 1 {
		t.Errorf("getUser called %d times, want 1 (cached)", got)
	}
	if _, err := c.GetUser(ctx, "nobody"); !errors.Is(err, koji.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name          string
		inject        func(h *fakefedora.KojiHub)
		method        string
		opts          koji.Options
		wantErr       bool
		wantCode      int
		wantTransient bool
		wantRequests  int64 // at the hub
		wantTrips     int64 // counted by the client
	}{
		{"unknown method is fault 1000, not transient, sent once", func(*fakefedora.KojiHub) {}, "noSuchMethod", koji.Options{}, true, koji.FaultGeneric, false, 1, 1},
		{"a fault is never retried by the transport", func(h *fakefedora.KojiHub) { h.FaultNext(1, koji.FaultParameter, "bad") }, "hello", koji.Options{}, true, koji.FaultParameter, false, 1, 1},
		{"1014 is repeated once and then succeeds", func(h *fakefedora.KojiHub) { h.FaultNext(1, koji.FaultServerOffline, "server is offline") }, "hello", koji.Options{}, false, 0, false, 2, 2},
		{"1014 that persists is transient", func(h *fakefedora.KojiHub) { h.FaultNext(5, koji.FaultServerOffline, "server is offline") }, "hello", koji.Options{}, true, koji.FaultServerOffline, true, 2, 2},
		{"1014 repeats can be switched off", func(h *fakefedora.KojiHub) { h.FaultNext(1, koji.FaultServerOffline, "database outage") }, "hello", koji.Options{OfflineRetries: -1}, true, koji.FaultServerOffline, true, 1, 1},
		{"5xx is retried by the transport", func(h *fakefedora.KojiHub) { h.FailHTTP(2, http.StatusServiceUnavailable) }, "hello", koji.Options{}, false, 0, false, 3, 3},
		{"5xx beyond the retries is a transient HTTPError", func(h *fakefedora.KojiHub) { h.FailHTTP(10, http.StatusBadGateway) }, "hello", koji.Options{}, true, 0, true, 4, 4},
		{"400 is not retried", func(h *fakefedora.KojiHub) { h.FailHTTP(1, http.StatusBadRequest) }, "hello", koji.Options{}, true, 0, false, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t)
			tc.inject(h)
			c := newClient(t, h.URL(), tc.opts)
			v, err := c.Call(context.Background(), tc.method)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && v != "Hello World" {
				t.Errorf("value %v", v)
			}
			var f *koji.Fault
			if tc.wantCode != 0 {
				if !errors.As(err, &f) || f.Code != tc.wantCode {
					t.Errorf("error %v, want fault %d", err, tc.wantCode)
				}
			} else if errors.As(err, &f) {
				t.Errorf("unexpected fault %v", f)
			}
			if tc.wantErr && tc.wantCode == 0 {
				var he *koji.HTTPError
				if !errors.As(err, &he) {
					t.Errorf("error %v is not an HTTPError", err)
				}
			}
			if koji.IsTransient(err) != tc.wantTransient {
				t.Errorf("IsTransient(%v) = %v", err, !tc.wantTransient)
			}
			if got := h.Requests(); got != tc.wantRequests {
				t.Errorf("hub saw %d requests, want %d", got, tc.wantRequests)
			}
			if got := c.Stats().RoundTrips; got != tc.wantTrips {
				t.Errorf("client counted %d round trips, want %d", got, tc.wantTrips)
			}
		})
	}
}

func TestHTTPErrorsOfOtherServers(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      string
		transient bool
	}{
		{"a 404 is an answer, not retried", http.StatusNotFound, "no hub here", "HTTP 404", false},
		{"a 200 that is not XML-RPC", http.StatusOK, "<html>proxy login</html>", "decoding response", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, n := cannedServer(t, tc.status, tc.body)
			c := newClient(t, url, koji.Options{})
			_, err := c.Call(context.Background(), "hello")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if koji.IsTransient(err) != tc.transient || n.Load() != 1 {
				t.Errorf("transient %v, %d requests", koji.IsTransient(err), n.Load())
			}
		})
	}
}

func TestMultiCallPerCallResults(t *testing.T) {
	h := newHub(t)
	id := h.AddTask(fakefedora.KojiTask{Method: "kiwiBuild", Created: testNow.Add(-time.Hour)})
	h.FaultCalls("getUser", 1, koji.FaultGeneric, "No such user: x")
	c := newClient(t, h.URL(), koji.Options{})
	res, err := c.MultiCall(context.Background(), []koji.Call{
		{Method: "getTaskInfo", Params: []any{id, koji.Kwargs{"request": true}}},
		{Method: "getTaskInfo", Params: []any{1420103679}},
		{Method: "noSuchMethod"},
		{Method: "getUser", Params: []any{"x"}},
		{Method: "hello"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 5 {
		t.Fatalf("%d results", len(res))
	}
	if res[0].Err != nil || res[0].Value.(map[string]any)["id"] != int64(id) {
		t.Errorf("call 0: %+v", res[0])
	}
	if res[1].Err != nil || res[1].Value != nil {
		t.Errorf("call 1 (unknown task): %+v, want nil value and no error", res[1])
	}
	var f *koji.Fault
	if !errors.As(res[2].Err, &f) || f.Code != koji.FaultGeneric || f.String != "Invalid method: noSuchMethod" {
		t.Errorf("call 2: %v", res[2].Err)
	}
	if !errors.As(res[3].Err, &f) || f.String != "No such user: x" {
		t.Errorf("call 3: %v", res[3].Err)
	}
	if res[4].Value != "Hello World" {
		t.Errorf("call 4: %+v", res[4])
	}
	if s := c.Stats(); s.Requests != 1 || s.Calls != 5 || s.Faults != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestMultiCallTopLevelFaultFailsTheBatch(t *testing.T) {
	h := newHub(t)
	h.FaultNext(1, koji.FaultGeneric, "multicall broke")
	c := newClient(t, h.URL(), koji.Options{})
	res, err := c.MultiCall(context.Background(), []koji.Call{{Method: "hello"}, {Method: "hello"}})
	var f *koji.Fault
	if !errors.As(err, &f) || f.String != "multicall broke" || res != nil {
		t.Fatalf("got %v, %v", res, err)
	}
}

func TestMultiCallBatching(t *testing.T) {
	const calls = 25
	tests := []struct {
		batch        int
		wantRequests int64
	}{
		{1, 25}, {7, 4}, {10, 3}, {25, 1}, {0, 1}, {100, 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("batch size %d", tc.batch), func(t *testing.T) {
			h := newHub(t)
			c := newClient(t, h.URL(), koji.Options{BatchSize: tc.batch})
			cs := make([]koji.Call, calls)
			for i := range cs {
				cs[i] = koji.Call{Method: "echo", Params: []any{i}}
			}
			res, err := c.MultiCall(context.Background(), cs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if !reflect.DeepEqual(r.Value, []any{int64(i)}) {
					t.Fatalf("result %d = %#v", i, r.Value)
				}
			}
			if got := h.Requests(); got != tc.wantRequests {
				t.Errorf("%d requests, want ceil(%d/%d) = %d", got, calls, tc.batch, tc.wantRequests)
			}
			if s := c.Stats(); s.Calls != calls || s.Requests != tc.wantRequests {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestContextCancellation(t *testing.T) {
	h := newHub(t)
	h.SetLatency(10 * time.Second)
	c := newClient(t, h.URL(), koji.Options{})
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Call", func(ctx context.Context) error { _, err := c.Call(ctx, "hello"); return err }},
		{"MultiCall", func(ctx context.Context) error {
			_, err := c.MultiCall(ctx, []koji.Call{{Method: "hello"}})
			return err
		}},
		{"ListTasks", func(ctx context.Context) error {
			_, err := c.ListTasks(ctx, koji.TaskQuery{Methods: []string{"kiwiBuild"}})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tc.call(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v, want DeadlineExceeded", err)
			}
			if koji.IsTransient(err) {
				t.Errorf("a cancelled call is reported transient")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("returned after %v", d)
			}
		})
	}

	// The same holds while waiting to repeat a request after fault 1014.
	h.SetLatency(0)
	h.FaultNext(1, koji.FaultServerOffline, "server is offline")
	slow := newClient(t, h.URL(), koji.Options{OfflineWait: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := slow.Call(ctx, "hello"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("offline wait: %v", err)
	}
}

func TestTransportTimeout(t *testing.T) {
	h := newHub(t)
	h.SetLatency(2 * time.Second)
	// A per-attempt timeout from the transport, with no deadline on the
	// context: the attempt and its one retry time out, and the failure is
	// transient.
	hc := httpclient.New(httpclient.Options{Timeout: 50 * time.Millisecond, RetryMax: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	c := newClient(t, h.URL(), koji.Options{HTTP: hc})
	start := time.Now()
	_, err := c.Call(context.Background(), "hello")
	if err == nil || !koji.IsTransient(err) {
		t.Errorf("error %v, want a transient timeout", err)
	}
	if got := c.Stats().RoundTrips; got != 2 {
		t.Errorf("%d round trips, want 2", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "koji.example.invalid/kojihub", "ftp://koji.example.invalid/"} {
		if _, err := koji.New(koji.Options{URL: u}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

// TestSharedTransportCountsOnlyKoji: with an httpclient shared with other
// remote clients (as cmd/composeci does), Stats().RoundTrips still counts
// only Koji's requests, while the shared client counts everything.
func TestSharedTransportCountsOnlyKoji(t *testing.T) {
	h := newHub(t)
	other, _ := cannedServer(t, http.StatusOK, "not koji")
	shared := fastHTTP(3)
	c := newClient(t, h.URL(), koji.Options{HTTP: shared})
	resp, err := shared.StandardClient().Get(other)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h.FailHTTP(1, http.StatusServiceUnavailable)
	if _, err := c.Call(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	if got := c.Stats().RoundTrips; got != 2 {
		t.Errorf("Koji round trips %d, want 2 (one retried 503)", got)
	}
	if got := shared.RoundTrips(); got != 3 {
		t.Errorf("shared client round trips %d, want 3", got)
	}
}
