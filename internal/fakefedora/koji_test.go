package fakefedora

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// kojiT0 is the fixed clock of most tests.
var kojiT0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func startKojiHub(t *testing.T) (*KojiHub, string) {
	t.Helper()
	h := NewKojiHub(KojiHubOptions{})
	h.SetNow(kojiT0)
	url := h.Start()
	t.Cleanup(h.Close)
	return h, url
}

// kojiPost sends a raw body and returns the status, headers and body.
func kojiPost(t *testing.T, url, body string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Post(url, "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// kojiRPC encodes a call the way Python's xmlrpc.client does (which is how
// the koji CLI calls the hub), posts it and parses the answer.
func kojiRPC(t *testing.T, url, method string, params ...any) (any, *kojiFault) {
	t.Helper()
	status, _, body := kojiPost(t, url, string(kojiDumpCall(method, params)))
	if status != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", method, status, body)
	}
	v, f, err := kojiParseResponse([]byte(body))
	if err != nil {
		t.Fatalf("%s: %v\n%s", method, err, body)
	}
	return v, f
}

// kojiParseResponse reads a methodResponse with the hub's own value parser.
func kojiParseResponse(body []byte) (any, *kojiFault, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	isFault := false
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, nil, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "fault":
			isFault = true
		case "value":
			v, err := kojiParseValue(d)
			if err != nil {
				return nil, nil, err
			}
			if isFault {
				m := v.(map[string]any)
				return nil, &kojiFault{code: int(m["faultCode"].(int64)), msg: m["faultString"].(string)}, nil
			}
			return v, nil, nil
		}
	}
}

func TestKojiHubHTTP(t *testing.T) {
	_, url := startKojiHub(t)
	tests := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{"GET is refused with Allow: POST", http.MethodGet, "", http.StatusMethodNotAllowed, "text/plain", "Method Not Allowed"},
		{"an empty POST is an invalid request", http.MethodPost, "", http.StatusBadRequest, "text/plain", "Invalid request: empty request"},
		{"unparseable XML is an invalid request", http.MethodPost, "<methodCall><methodName>hello", http.StatusBadRequest, "text/plain", "Invalid request:"},
		{"a call is answered with text/xml", http.MethodPost, "<methodCall><methodName>hello</methodName></methodCall>", http.StatusOK, "text/xml", "<string>Hello World</string>"},
		{"a fault comes with HTTP 200", http.MethodPost, "<methodCall><methodName>noSuchMethod</methodName></methodCall>", http.StatusOK, "text/xml", "<fault>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("Content-Type %q, want %q", ct, tc.wantType)
			}
			if tc.wantStatus == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
			if tc.wantStatus == http.StatusOK && resp.Header.Get("Koji-Version") != KojiVersion {
				t.Errorf("Koji-Version = %q", resp.Header.Get("Koji-Version"))
			}
			if !strings.Contains(string(b), tc.wantBody) {
				t.Errorf("body %q lacks %q", b, tc.wantBody)
			}
		})
	}
}

// TestKojiHubWireFormat pins the bytes: what CPython's marshaller writes,
// with Koji's extensions (see the package comment).
func TestKojiHubWireFormat(t *testing.T) {
	h, url := startKojiHub(t)
	h.AddUser("compose-bot")
	tests := []struct {
		name, body, want string
	}{
		{
			name: "struct with typed strings, ints and an empty array",
			body: "<?xml version='1.0'?>\n<methodCall>\n<methodName>getUser</methodName>\n<params>\n<param>\n<value><string>compose-bot</string></value>\n</param>\n</params>\n</methodCall>\n",
			want: "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><struct>\n" +
				"<member>\n<name>id</name>\n<value><int>3370</int></value>\n</member>\n" +
				"<member>\n<name>name</name>\n<value><string>compose-bot</string></value>\n</member>\n" +
				"<member>\n<name>status</name>\n<value><int>0</int></value>\n</member>\n" +
				"<member>\n<name>usertype</name>\n<value><int>0</int></value>\n</member>\n" +
				"<member>\n<name>krb_principals</name>\n<value><array><data>\n</data></array></value>\n</member>\n" +
				"</struct></value>\n</param>\n</params>\n</methodResponse>\n",
		},
		{
			name: "None as the whole result",
			body: "<methodCall><methodName>getLoggedInUser</methodName></methodCall>",
			want: "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><nil/></value></param>\n</params>\n</methodResponse>\n",
		},
		{
			name: "i8 beyond int32, int within, doubles, booleans, escaping",
			body: "<methodCall><methodName>echo</methodName><params>" +
				"<param><value><i8>5368709120</i8></value></param>" +
				"<param><value><int>-7</int></value></param>" +
				"<param><value><double>4.0</double></value></param>" +
				"<param><value><double>1714540354.123456</double></value></param>" +
				"<param><value><boolean>1</boolean></value></param>" +
				"<param><value><string>a &lt;b&gt; &amp; c</string></value></param>" +
				"</params></methodCall>",
			want: "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n" +
				"<value><i8>5368709120</i8></value>\n" +
				"<value><int>-7</int></value>\n" +
				"<value><double>4.0</double></value>\n" +
				"<value><double>1714540354.123456</double></value>\n" +
				"<value><boolean>1</boolean></value>\n" +
				"<value><string>a &lt;b&gt; &amp; c</string></value>\n" +
				"</data></array></value>\n</param>\n</params>\n</methodResponse>\n",
		},
		{
			name: "top-level fault",
			body: "<methodCall><methodName>noSuchMethod</methodName></methodCall>",
			want: "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n" +
				"<member>\n<name>faultCode</name>\n<value><int>1000</int></value>\n</member>\n" +
				"<member>\n<name>faultString</name>\n<value><string>Invalid method: noSuchMethod</string></value>\n</member>\n" +
				"</struct></value>\n</fault>\n</methodResponse>\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, got := kojiPost(t, url, tc.body)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d", status)
			}
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestKojiHubTaskRowFormat(t *testing.T) {
	h, url := startKojiHub(t)
	created := kojiT0.Add(-time.Hour).Add(123456 * time.Microsecond)
	id := h.AddTask(KojiTask{Method: "kiwiBuild", Owner: "releng", Created: created,
		Schedule: KojiRunSchedule(10*time.Second, 20*time.Minute, KojiClosed),
		Request:  []any{"f44", []any{"x86_64"}, map[string]any{"release": "20261122.n.0"}}})
	status, _, body := kojiPost(t, url, string(kojiDumpCall("listTasks", []any{map[string]any{"decode": true}, map[string]any{"order": "id"}})))
	if status != 200 {
		t.Fatal(status)
	}
	for _, want := range []string{
		fmt.Sprintf("<name>id</name>\n<value><int>%d</int></value>\n", id),
		"<name>create_time</name>\n<value><string>2026-11-22 11:00:00.123456+00:00</string></value>\n",
		"<name>create_ts</name>\n<value><double>1795345200.123456</double></value>\n",
		"<name>start_time</name>\n<value><string>2026-11-22 11:00:10.123456+00:00</string></value>\n",
		"<name>parent</name>\n<value><nil/></value></member>\n",
		"<name>label</name>\n<value><nil/></value></member>\n",
		"<name>weight</name>\n<value><double>1.0</double></value>\n",
		"<name>owner_name</name>\n<value><string>releng</string></value>\n",
		"<name>request</name>\n<value><array><data>\n<value><string>f44</string></value>\n",
		"<name>result</name>\n<value><array><data>\n<value><struct>\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("row lacks %q", want)
		}
	}
	for _, bad := range []string{"<value/>", "<value></value>", "dateTime.iso8601"} {
		if strings.Contains(body, bad) {
			t.Errorf("row contains %q, which a real hub never sends", bad)
		}
	}

	// Without decode, request is the raw XML text the database holds.
	v, f := kojiRPC(t, url, "listTasks", map[string]any{"method": "kiwiBuild"}, map[string]any{"order": "id"})
	if f != nil {
		t.Fatal(f)
	}
	raw := v.([]any)[0].(map[string]any)["request"].(string)
	if !strings.HasPrefix(raw, "<?xml version='1.0'?>\n<methodCall>\n<methodName>kiwiBuild</methodName>") {
		t.Errorf("undecoded request = %q", raw)
	}

	// A database in another zone renders offsets; before 1.22 there were none.
	h2 := NewKojiHub(KojiHubOptions{Location: time.FixedZone("EDT", -4*3600)})
	h2.SetNow(kojiT0)
	h2.AddTask(KojiTask{Method: "x", Created: kojiT0.Add(-time.Hour)})
	url2 := h2.Start()
	defer h2.Close()
	_, _, body2 := kojiPost(t, url2, string(kojiDumpCall("getTaskInfo", []any{int64(120000001)})))
	if !strings.Contains(body2, "<string>2026-11-22 07:00:00-04:00</string>") {
		t.Errorf("zoned create_time missing:\n%s", body2)
	}
}

// TestKojiHubParsesLikePython checks the request quirks of the hub's
// parser, seen through echo, which returns its arguments.
func TestKojiHubParsesLikePython(t *testing.T) {
	_, url := startKojiHub(t)
	tests := []struct {
		name   string
		params string
		want   []any
	}{
		{"an empty <param> is dropped and later arguments shift left",
			"<param><value><int>5</int></value></param><param></param><param><value><string>A</string></value></param>",
			[]any{int64(5), "A"}},
		{"<value/> is the empty string", "<param><value/></param>", []any{""}},
		{"untyped text is a string", "<param><value>plain</value></param>", []any{"plain"}},
		{"nil and ex:nil are None", `<param><value><nil/></value></param><param><value><ex:nil/></value></param>`, []any{nil, nil}},
		{"ex:i8, i4 and big int are ints", `<param><value><ex:i8>5368709120</ex:i8></value></param><param><value><i4>3</i4></value></param><param><value><int>5368709121</int></value></param>`,
			[]any{int64(5368709120), int64(3), int64(5368709121)}},
		{"<value/> inside an array does not swallow what follows",
			"<param><value><array><data><value><int>5</int></value><value/><value><string>A</string></value></data></array></value></param>",
			[]any{[]any{int64(5), "", "A"}}},
		{"no params means no arguments", "", []any{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := "<methodCall><methodName>echo</methodName>"
			if tc.params != "" {
				body += "<params>" + tc.params + "</params>"
			}
			body += "</methodCall>"
			status, _, resp := kojiPost(t, url, body)
			if status != 200 {
				t.Fatalf("HTTP %d: %s", status, resp)
			}
			got, f, err := kojiParseResponse([]byte(resp))
			if err != nil || f != nil {
				t.Fatalf("%v %v", err, f)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("echo got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestKojiHubKwargsAndSignatures(t *testing.T) {
	h, url := startKojiHub(t)
	id := h.AddTask(KojiTask{Method: "livemedia", Created: kojiT0.Add(-time.Hour), Request: []any{"Fedora-Workstation-Live", "Rawhide"}})
	tests := []struct {
		name        string
		params      []any
		wantRequest bool
		wantFault   int
	}{
		{"positional request=True", []any{int64(id), true}, true, 0},
		{"keyword request=True through __starstar", []any{int64(id), map[string]any{"request": true, "__starstar": true}}, true, 0},
		{"a struct without __starstar is positional", []any{int64(id), map[string]any{"request": true}}, true, 0},
		{"unknown keyword", []any{int64(id), map[string]any{"bogus": true, "__starstar": true}}, false, KojiFaultParameter},
		{"too many arguments", []any{int64(id), true, false, true}, false, KojiFaultParameter},
		{"missing task_id", nil, false, KojiFaultParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, f := kojiRPC(t, url, "getTaskInfo", tc.params...)
			if tc.wantFault != 0 {
				if f == nil || f.code != tc.wantFault {
					t.Fatalf("fault %v, want code %d", f, tc.wantFault)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			_, has := v.(map[string]any)["request"]
			if has != tc.wantRequest {
				t.Errorf("request present = %v, want %v", has, tc.wantRequest)
			}
		})
	}
	// getTaskInfo has no result or owner_name; unknown ids are nil or a fault.
	v, _ := kojiRPC(t, url, "getTaskInfo", int64(id))
	for _, k := range []string{"result", "owner_name"} {
		if _, ok := v.(map[string]any)[k]; ok {
			t.Errorf("getTaskInfo has %s", k)
		}
	}
	if v, f := kojiRPC(t, url, "getTaskInfo", int64(999)); v != nil || f != nil {
		t.Errorf("unknown task: %v %v", v, f)
	}
	if _, f := kojiRPC(t, url, "getTaskInfo", int64(999), false, true); f == nil || f.code != KojiFaultGeneric {
		t.Errorf("strict unknown task: %v", f)
	}
	if v, _ := kojiRPC(t, url, "getTaskInfo", []any{int64(id), int64(999)}); len(v.([]any)) != 2 || v.([]any)[1] != nil {
		t.Errorf("list form: %v", v)
	}
	if _, f := kojiRPC(t, url, "getUser"); f == nil || f.msg != "No user provided" {
		t.Errorf("getUser(): %v", f)
	}
	if v, f := kojiRPC(t, url, "getUser", "nobody"); v != nil || f != nil {
		t.Errorf("getUser(nobody): %v %v", v, f)
	}
}

func TestKojiHubMultiCall(t *testing.T) {
	h, url := startKojiHub(t)
	id := h.AddTask(KojiTask{Method: "kiwiBuild", Created: kojiT0.Add(-time.Hour)})
	for _, name := range []string{"multiCall", "system.multicall"} {
		t.Run(name, func(t *testing.T) {
			calls := []any{
				map[string]any{"methodName": "getTaskInfo", "params": []any{int64(id), map[string]any{"request": true, "__starstar": true}}},
				map[string]any{"methodName": "getTaskInfo", "params": []any{int64(1420103679)}},
				map[string]any{"methodName": "noSuchMethod", "params": []any{}},
				map[string]any{"methodName": "hello", "params": []any{}},
			}
			v, f := kojiRPC(t, url, name, calls)
			if f != nil {
				t.Fatal(f)
			}
			res := v.([]any)
			if len(res) != 4 {
				t.Fatalf("%d results", len(res))
			}
			if got := res[0].([]any)[0].(map[string]any)["id"]; got != int64(id) {
				t.Errorf("call 0: id %v", got)
			}
			if r := res[1].([]any); len(r) != 1 || r[0] != nil {
				t.Errorf("call 1: %#v, want [nil]", r)
			}
			fs := res[2].(map[string]any)
			if fs["faultCode"] != int64(KojiFaultGeneric) || fs["faultString"] != "Invalid method: noSuchMethod" {
				t.Errorf("call 2: %#v", fs)
			}
			if tb, ok := fs["traceback"].([]any); !ok || len(tb) == 0 {
				t.Errorf("call 2: no traceback")
			}
			if res[3].([]any)[0] != "Hello World" {
				t.Errorf("call 3: %v", res[3])
			}
		})
	}
}

func TestKojiHubListTasks(t *testing.T) {
	h, url := startKojiHub(t)
	base := kojiT0.Add(-10 * time.Hour)
	closed := KojiRunSchedule(0, time.Minute, KojiClosed)
	p1 := h.AddTask(KojiTask{Method: "kiwiBuild", Owner: "releng", Created: base, Schedule: closed})
	c1 := h.AddTask(KojiTask{Method: "createKiwiImage", Arch: "x86_64", Owner: "releng", Parent: p1, Created: base.Add(time.Second), Schedule: closed})
	c2 := h.AddTask(KojiTask{Method: "createKiwiImage", Arch: "aarch64", Owner: "releng", Parent: p1, Created: base.Add(2 * time.Second), Schedule: KojiRunSchedule(0, time.Minute, KojiFailed)})
	p2 := h.AddTask(KojiTask{Method: "livemedia", Owner: "alice", Created: base.Add(time.Hour)})
	future := h.AddTask(KojiTask{Method: "livemedia", Owner: "releng", Created: kojiT0.Add(time.Hour)})
	releng := int64(h.AddUser("releng"))
	ts := func(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

	tests := []struct {
		name      string
		opts      map[string]any
		queryOpts map[string]any
		want      []int
		wantCount int64
		wantFault int
	}{
		{"all, ordered by id", nil, map[string]any{"order": "id"}, []int{p1, c1, c2, p2}, 0, 0},
		{"descending order", nil, map[string]any{"order": "-id"}, []int{p2, c2, c1, p1}, 0, 0},
		{"no order: the database's order, not id", nil, nil, []int{p2, c2, c1, p1}, 0, 0},
		{"method is a scalar", map[string]any{"method": "createKiwiImage"}, map[string]any{"order": "id"}, []int{c1, c2}, 0, 0},
		{"state list", map[string]any{"state": []any{int64(KojiFailed), int64(KojiFree)}}, map[string]any{"order": "id"}, []int{c2, p2}, 0, 0},
		{"not_state", map[string]any{"not_state": []any{int64(KojiClosed)}}, map[string]any{"order": "id"}, []int{c2, p2}, 0, 0},
		{"arch list", map[string]any{"arch": []any{"aarch64", "noarch"}}, map[string]any{"order": "id"}, []int{p1, c2, p2}, 0, 0},
		{"owner id", map[string]any{"owner": releng}, map[string]any{"order": "id"}, []int{p1, c1, c2}, 0, 0},
		{"parent nil is top-level", map[string]any{"parent": nil}, map[string]any{"order": "id"}, []int{p1, p2}, 0, 0},
		{"not_parent nil is children", map[string]any{"not_parent": nil}, map[string]any{"order": "id"}, []int{c1, c2}, 0, 0},
		{"parent id", map[string]any{"parent": int64(p1)}, map[string]any{"order": "id"}, []int{c1, c2}, 0, 0},
		{"createdAfter is strict", map[string]any{"createdAfter": ts(base)}, map[string]any{"order": "id"}, []int{c1, c2, p2}, 0, 0},
		{"createdBefore is strict", map[string]any{"createdBefore": ts(base.Add(time.Second))}, map[string]any{"order": "id"}, []int{p1}, 0, 0},
		{"integer epoch", map[string]any{"createdAfter": base.Add(30 * time.Minute).Unix()}, map[string]any{"order": "id"}, []int{p2}, 0, 0},
		{"string time goes to the database", map[string]any{"createdBefore": "2026-11-22 02:00:01.5"}, map[string]any{"order": "id"}, []int{p1, c1}, 0, 0},
		{"zero time is ignored (opts.get)", map[string]any{"createdAfter": 0.0}, map[string]any{"order": "id"}, []int{p1, c1, c2, p2}, 0, 0},
		{"completeAfter needs a completion", map[string]any{"completeAfter": ts(base)}, map[string]any{"order": "id"}, []int{p1, c1, c2}, 0, 0},
		{"limit and offset", nil, map[string]any{"order": "id", "offset": int64(1), "limit": int64(2)}, []int{c1, c2}, 0, 0},
		{"countOnly", map[string]any{"method": "createKiwiImage"}, map[string]any{"countOnly": true}, nil, 2, 0},
		{"dateTime.iso8601 is rejected", map[string]any{"createdAfter": kojiDateTime("20261122T00:00:00")}, nil, nil, 0, KojiFaultGeneric},
		{"unknown order column", nil, map[string]any{"order": "bogus"}, nil, 0, KojiFaultParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var params []any
			if tc.opts != nil || tc.queryOpts != nil {
				params = []any{tc.opts, tc.queryOpts}
			}
			v, f := kojiRPC(t, url, "listTasks", params...)
			if tc.wantFault != 0 {
				if f == nil || f.code != tc.wantFault {
					t.Fatalf("fault %v, want %d", f, tc.wantFault)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			if tc.wantCount != 0 {
				if v != tc.wantCount {
					t.Errorf("count %v, want %d", v, tc.wantCount)
				}
				return
			}
			var got []int
			for _, r := range v.([]any) {
				got = append(got, int(r.(map[string]any)["id"].(int64)))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
		})
	}
	if h.TaskState(future) != -1 {
		t.Errorf("a task created in the future exists")
	}
}

func TestKojiHubScheduleFollowsTheClock(t *testing.T) {
	h, url := startKojiHub(t)
	id := h.AddTask(KojiTask{Method: "kiwiBuild", Created: kojiT0.Add(time.Minute), Schedule: KojiRunSchedule(time.Minute, 10*time.Minute, KojiClosed)})
	steps := []struct {
		advance time.Duration
		want    int
	}{
		{0, -1},
		{time.Minute, KojiFree},
		{time.Minute, KojiOpen},
		{9 * time.Minute, KojiOpen},
		{time.Minute, KojiClosed},
	}
	for _, s := range steps {
		h.Advance(s.advance)
		if got := h.TaskState(id); got != s.want {
			t.Fatalf("at %v: state %d, want %d", h.Now(), got, s.want)
		}
		v, _ := kojiRPC(t, url, "getTaskInfo", int64(id))
		if s.want == -1 {
			if v != nil {
				t.Fatalf("task visible before creation")
			}
			continue
		}
		m := v.(map[string]any)
		if m["state"] != int64(s.want) {
			t.Fatalf("hub says state %v, want %d", m["state"], s.want)
		}
		if (s.want == KojiClosed) != (m["completion_ts"] != nil) {
			t.Errorf("completion_ts %v in state %d", m["completion_ts"], s.want)
		}
	}
}

func TestKojiHubInjection(t *testing.T) {
	h, url := startKojiHub(t)
	body := "<methodCall><methodName>hello</methodName></methodCall>"

	h.FailHTTP(2, http.StatusServiceUnavailable)
	for i, want := range []int{503, 503, 200} {
		if status, _, _ := kojiPost(t, url, body); status != want {
			t.Errorf("request %d: HTTP %d, want %d", i, status, want)
		}
	}

	h.FaultNext(1, KojiFaultServerOffline, "server is offline")
	if _, f := kojiRPC(t, url, "hello"); f == nil || f.code != KojiFaultServerOffline {
		t.Errorf("want fault 1014, got %v", f)
	}
	if v, f := kojiRPC(t, url, "hello"); f != nil || v != "Hello World" {
		t.Errorf("fault did not clear: %v %v", v, f)
	}

	h.FaultCalls("hello", 1, KojiFaultGeneric, "boom")
	v, f := kojiRPC(t, url, "multiCall", []any{
		map[string]any{"methodName": "hello", "params": []any{}},
		map[string]any{"methodName": "hello", "params": []any{}},
	})
	if f != nil {
		t.Fatal(f)
	}
	if res := v.([]any); res[0].(map[string]any)["faultString"] != "boom" || res[1].([]any)[0] != "Hello World" {
		t.Errorf("per-call fault: %#v", res)
	}

	h.SetLatency(50 * time.Millisecond)
	start := time.Now()
	kojiRPC(t, url, "hello")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("latency not applied: %v", d)
	}
	if got := h.Requests(); got != 7 {
		t.Errorf("Requests() = %d, want 7", got)
	}
	if got := h.CallCount("hello"); got != 5 {
		t.Errorf("CallCount(hello) = %d, want 5 (a request answered by an injected fault runs nothing)", got)
	}
}

func TestAddNightlyImageTasks(t *testing.T) {
	h, url := startKojiHub(t)
	ids := h.AddNightlyImageTasks("Fedora-Rawhide-20261122.n.0", "20261122.n.0", "Rawhide", 6)
	h.AddNightlyImageTasks("Fedora-44-20261122.n.1", "20261122.n.1", "44", 3)
	if len(ids) != 6 {
		t.Fatalf("%d ids", len(ids))
	}
	v, f := kojiRPC(t, url, "listTasks", map[string]any{"parent": nil, "decode": true,
		"createdAfter": float64(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).Unix())}, map[string]any{"order": "id"})
	if f != nil {
		t.Fatal(f)
	}
	methods := map[string]int{}
	releases := map[string]int{}
	for _, r := range v.([]any) {
		m := r.(map[string]any)
		methods[m["method"].(string)]++
		req := m["request"].([]any)
		opts := req[len(req)-1].(map[string]any)
		releases[opts["release"].(string)]++
		if m["owner_name"] != KojiNightlyOwner || m["state"] != int64(KojiClosed) {
			t.Errorf("task %v: owner %v state %v", m["id"], m["owner_name"], m["state"])
		}
		created := time.Unix(int64(m["create_ts"].(float64)), 0).UTC()
		if created.Format("20060102") != "20261122" {
			t.Errorf("task %v created %v", m["id"], created)
		}
	}
	if want := map[string]int{"kiwiBuild": 3, "livemedia": 3, "osbuildImage": 3}; !reflect.DeepEqual(methods, want) {
		t.Errorf("methods %v, want %v", methods, want)
	}
	if want := map[string]int{"20261122.n.0": 6, "20261122.n.1": 3}; !reflect.DeepEqual(releases, want) {
		t.Errorf("releases %v, want %v", releases, want)
	}
	// kiwiBuild and livemedia parents have per-arch children whose third
	// argument is the release.
	v, _ = kojiRPC(t, url, "getTaskChildren", int64(ids[0]), true)
	kids := v.([]any)
	if len(kids) != 2 {
		t.Fatalf("%d children", len(kids))
	}
	for _, k := range kids {
		m := k.(map[string]any)
		if m["method"] != "createKiwiImage" || m["request"].([]any)[2] != "20261122.n.0" || m["parent"] != int64(ids[0]) {
			t.Errorf("child %v", m)
		}
	}
}

func TestKojiFloatRepr(t *testing.T) {
	tests := map[float64]string{
		4:                  "4.0",
		1714540360.5:       "1714540360.5",
		1714540354.123456:  "1714540354.123456",
		0.0001:             "0.0001",
		0.00001:            "1e-05",
		1e16:               "1e+16",
		123456789012345678: "1.2345678901234568e+17",
		0:                  "0.0",
		-2.5:               "-2.5",
	}
	for f, want := range tests {
		if got := kojiFloatRepr(f); got != want {
			t.Errorf("repr(%v) = %q, want %q", f, got, want)
		}
	}
}
