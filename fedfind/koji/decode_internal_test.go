package koji

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// member and xstruct are a struct with its members in order, as Python
// marshals a dict.
type member struct {
	k string
	v any
}

type xstruct []member

// rawXML is written as it is, for shapes the marshaller never makes.
type rawXML string

// marshal writes v as CPython's xmlrpc.client marshaller (with allow_none
// and Koji's <i8>) writes it: what the hub sends.
func marshal(b *strings.Builder, v any) {
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
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
		marshal(b, int64(x))
	case int64:
		if x > math.MaxInt32 || x < math.MinInt32 {
			b.WriteString("<value><i8>" + strconv.FormatInt(x, 10) + "</i8></value>\n")
		} else {
			b.WriteString("<value><int>" + strconv.FormatInt(x, 10) + "</int></value>\n")
		}
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		b.WriteString("<value><double>" + s + "</double></value>\n")
	case string:
		b.WriteString("<value><string>" + esc.Replace(x) + "</string></value>\n")
	case []any:
		b.WriteString("<value><array><data>\n")
		for _, e := range x {
			marshal(b, e)
		}
		b.WriteString("</data></array></value>\n")
	case xstruct:
		b.WriteString("<value><struct>\n")
		for _, m := range x {
			b.WriteString("<member>\n<name>" + esc.Replace(m.k) + "</name>\n")
			marshal(b, m.v)
			b.WriteString("</member>\n")
		}
		b.WriteString("</struct></value>\n")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := make(xstruct, len(keys))
		for i, k := range keys {
			s[i] = member{k, x[k]}
		}
		marshal(b, s)
	case rawXML:
		b.WriteString(string(x))
	default:
		panic(fmt.Sprintf("marshal: %T", v))
	}
}

// responseOf is a methodResponse carrying v.
func responseOf(v any) []byte {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n")
	marshal(&b, v)
	b.WriteString("</param>\n</params>\n</methodResponse>\n")
	return []byte(b.String())
}

func wrap(value string) []byte {
	return []byte("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n" + value + "\n</param>\n</params>\n</methodResponse>\n")
}

// TestDecodeXML covers what an XML parser must accept around XML-RPC
// values, which the hub never writes but a proxy or another server may.
func TestDecodeXML(t *testing.T) {
	tests := []struct {
		name string
		doc  []byte
		want any
	}{
		{"entities and character references", wrap("<value><string>a&lt;b&gt;&amp;&quot;&apos;&#233;&#x1F600;</string></value>"), "a<b>&\"'é😀"},
		{"a CDATA section is literal", wrap("<value><string>x<![CDATA[<&>]]>y</string></value>"), "x<&>y"},
		{"a comment inside text is dropped", wrap("<value><string>a<!-- c -->b</string></value>"), "ab"},
		{"comments and processing instructions between elements", []byte("<?xml version='1.0'?><!-- c --><methodResponse><?pi x?><params><!-- c --><param><value><int>1</int></value></param></params></methodResponse><!-- end -->"), int64(1)},
		{"a byte order mark", append([]byte("\uFEFF"), wrap("<value><int>2</int></value>")...), int64(2)},
		{"attributes are ignored", []byte(`<methodResponse a="1"><params><param><value x='>'><int>3</int></value></param></params></methodResponse>`), int64(3)},
		{"namespace prefixes: ex:nil and ex:i8", wrap("<value><array><data><value><ex:nil/></value><value><ex:i8>5368709120</ex:i8></value></data></array></value>"), []any{nil, int64(5368709120)}},
		{"CRLF and lone CR become LF", wrap("<value><string>a\r\nb\rc</string></value>"), "a\nb\nc"},
		{"untyped text is a trimmed string", wrap("<value>  hello  </value>"), "hello"},
		{"an empty untyped value is nil", wrap("<value></value>"), nil},
		{"a self-closing value is nil", wrap("<value/>"), nil},
		{"a self-closing string is nil", wrap("<value><string/></value>"), nil},
		{"self-closing array and struct are empty", wrap("<value><array><data><value><array/></value><value><struct/></value><value><array><data/></array></value></data></array></value>"), []any{[]any{}, map[string]any{}, []any{}}},
		{"booleans, doubles, negative and spaced integers", wrap("<value><array><data><value><boolean>0</boolean></value><value><double>-1.5e3</double></value><value><i4> -7 </i4></value></data></array></value>"), []any{false, -1500.0, int64(-7)}},
		{"dateTime.iso8601", wrap("<value><dateTime.iso8601>20261122T03:00:00</dateTime.iso8601></value>"), time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)},
		{"base64 stays text, as kolo kept it", wrap("<value><base64>aGk=</base64></value>"), "aGk="},
		{"a member name with an entity, and a struct value after it", wrap("<value><struct><member><name>a&amp;b</name><value><struct><member><name>c&lt;</name><value><int>1</int></value></member></struct></value></member></struct></value>"),
			map[string]any{"a&b": map[string]any{"c<": int64(1)}}},
		{"an empty member name is \"\" (kolo failed on it)", wrap("<value><struct><member><name></name><value><int>1</int></value></member><member><name/><value><int>2</int></value></member></struct></value>"), map[string]any{"": int64(2)}},
		{"a repeated member: the last wins", wrap("<value><struct><member><name>a</name><value><int>1</int></value></member><member><name>a</name><value><int>2</int></value></member></struct></value>"), map[string]any{"a": int64(2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeResponse(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestDecodeRejects: broken answers are errors naming the decode, never a
// panic, a partial value or a blown stack.
func TestDecodeRejects(t *testing.T) {
	deep := strings.Repeat("<value><array><data>", maxValueDepth+1) + "<value><int>1</int></value>" + strings.Repeat("</data></array></value>", maxValueDepth+1)
	tests := []struct {
		name, doc string
	}{
		{"empty", ""},
		{"an HTML page", "<html><body>proxy login</body></html>"},
		{"a DOCTYPE", "<!DOCTYPE x [<!ENTITY a 'b'>]><methodResponse><params><param><value>&a;</value></param></params></methodResponse>"},
		{"an unknown entity", string(wrap("<value><string>&nbsp;</string></value>"))},
		{"a bad character reference", string(wrap("<value><string>&#0;</string></value>"))},
		{"a mismatched end tag", string(wrap("<value><string>x</int></value>"))},
		{"truncated", string(wrap("<value><string>x</string></value>"))[:60]},
		{"data after the document", string(wrap("<value><int>1</int></value>")) + "<x/>"},
		{"text between elements", string(wrap("<value><array><data>junk<value><int>1</int></value></data></array></value>"))},
		{"text before a type", string(wrap("<value>x<int>1</int></value>"))},
		{"a bad int", string(wrap("<value><int>one</int></value>"))},
		{"an empty int", string(wrap("<value><int></int></value>"))},
		{"a bad boolean", string(wrap("<value><boolean>yes</boolean></value>"))},
		{"a bad double", string(wrap("<value><double>1,5</double></value>"))},
		{"text in nil", string(wrap("<value><nil>x</nil></value>"))},
		{"an unknown type", string(wrap("<value><float>1</float></value>"))},
		{"a member without a name", string(wrap("<value><struct><member><value><int>1</int></value></member></struct></value>"))},
		{"no params or fault", "<methodResponse></methodResponse>"},
		{"an empty param", "<methodResponse><params><param/></params></methodResponse>"},
		{"an unterminated comment", "<methodResponse><!-- "},
		{"an unterminated attribute", `<methodResponse a="`},
		{"nested too deeply", string(wrap(deep))},
		{"a fault without a code", "<methodResponse><fault><value><struct><member><name>faultString</name><value><string>x</string></value></member></struct></value></fault></methodResponse>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := decodeResponse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("decoded %#v", v)
			}
			if !strings.Contains(err.Error(), "koji: decoding") {
				t.Errorf("error %q does not name the decode", err)
			}
		})
	}
}

// randomValue is a value of the kinds the hub sends, with the edge cases
// kolo needed repairs for: nil, i8, empty strings, structs and arrays, and
// text that needs escaping.
func randomValue(rng *rand.Rand, depth int) any {
	n := 9
	if depth > 3 {
		n = 6 // scalars only
	}
	switch rng.IntN(n) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return []int64{0, 1, -1, 255, 256, math.MaxInt32, math.MaxInt32 + 1, math.MinInt32 - 1, math.MaxInt64, math.MinInt64, 1420103679}[rng.IntN(11)]
	case 3:
		return []float64{0, 1.5, -2.25, 1714540354.123456, 1e-7, 1e21, 4.0}[rng.IntN(7)]
	case 4, 5:
		return randomString(rng)
	case 6:
		a := make([]any, rng.IntN(4))
		for i := range a {
			a[i] = randomValue(rng, depth+1)
		}
		return a
	default:
		m := map[string]any{}
		for range rng.IntN(4) {
			// Not empty: kolo fails on <name></name> (the streaming
			// decoder reads it as "").
			m["k"+randomString(rng)] = randomValue(rng, depth+1)
		}
		return m
	}
}

func randomString(rng *rand.Rand) string {
	parts := []string{"", "x86_64", "a<b>&c", "Fedora-KDE-Live", "é", "😀", " spaced ", "line\nbreak", "cr\r\nlf", "tab\t", "]]>", "&amp;"}
	var b strings.Builder
	for range rng.IntN(3) {
		b.WriteString(parts[rng.IntN(len(parts))])
	}
	return b.String()
}

// TestDecodeMatchesKolo decodes random hub answers with the streaming
// decoder and with kolo (the decoder it replaces) and wants the same
// values: Call and MultiCall answer as they did.
func TestDecodeMatchesKolo(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 2000 {
		v := randomValue(rng, 0)
		doc := responseOf(v)
		got, err := decodeResponse(doc)
		want, werr := koloDecodeResponse(doc)
		if err != nil || werr != nil {
			t.Fatalf("case %d: streaming %v, kolo %v\n%s", i, err, werr, doc)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: streaming %#v\nkolo %#v\n%s", i, got, want, doc)
		}
	}
	// Faults, top level.
	fault := []byte("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1014</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>server is offline</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n")
	_, err := decodeResponse(fault)
	_, werr := koloDecodeResponse(fault)
	var f, wf *Fault
	if !errors.As(err, &f) || !errors.As(werr, &wf) || *f != *wf || f.Code != FaultServerOffline {
		t.Errorf("fault: streaming %v, kolo %v", err, werr)
	}
}

// randomTaskRow is a listTasks row as the hub writes it, its members in
// the hub's order, with random gaps, nils, types and times.
func randomTaskRow(rng *rand.Rand, id int64) xstruct {
	ts := func() any {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return int64(1714540354)
		}
		return 1714540354.0 + float64(rng.IntN(1e6))/1e6
	}
	tstr := func() any {
		return []any{nil, "", "2024-05-01 05:12:40+00:00", "2024-03-12 00:06:28.541893-04:00", "2017-11-03 12:57:49.431179", "yesterday"}[rng.IntN(6)]
	}
	maybe := func(v any) any {
		if rng.IntN(5) == 0 {
			return nil
		}
		return v
	}
	var idv any = id
	if rng.IntN(50) == 0 {
		idv = []any{nil, "7", 7.0}[rng.IntN(3)]
	}
	row := xstruct{
		{"id", idv}, {"state", int64(rng.IntN(6))},
		{"create_time", tstr()}, {"create_ts", ts()},
		{"start_time", tstr()}, {"start_ts", ts()},
		{"completion_time", tstr()}, {"completion_ts", ts()},
		{"channel_id", int64(12)}, {"host_id", maybe(int64(345))}, {"parent", maybe(int64(rng.IntN(3)))},
		{"label", maybe(randomString(rng))}, {"waiting", maybe(true)}, {"awaited", maybe(false)},
		{"owner", int64(4)}, {"method", []any{"kiwiBuild", "livemedia", "", nil}[rng.IntN(4)]}, {"arch", "noarch"},
		{"priority", []any{int64(20), 19.0, nil}[rng.IntN(3)]}, {"weight", []any{4.0, int64(2), nil}[rng.IntN(3)]},
		{"request", []any{randomValue(rng, 1), []any{"f44", []any{"x86_64"}, map[string]any{"release": "20261122.n.0", "version": "Rawhide"}}}[rng.IntN(2)]},
		{"result", randomValue(rng, 1)}, {"owner_name", "releng"}, {"owner_type", int64(0)},
	}
	rng.Shuffle(len(row), func(i, j int) {
		if rng.IntN(4) == 0 { // mostly the hub's order, sometimes not
			row[i], row[j] = row[j], row[i]
		}
	})
	if rng.IntN(20) == 0 {
		row = row[:rng.IntN(len(row))]
	}
	return row
}

// randomMultiCall is a listTasks multicall answer of n calls: task lists,
// faults (with Koji's traceback member), and the odd value that is not a
// task list.
func randomMultiCall(rng *rand.Rand, n int) []byte {
	results := make([]any, n)
	id := int64(1420000000)
	for i := range results {
		switch rng.IntN(10) {
		case 0:
			results[i] = xstruct{{"faultCode", int64(1000)}, {"faultString", "Invalid method: x"}, {"traceback", []any{"Traceback", "..."}}}
		case 1:
			results[i] = []any{[]any{nil, "x", xstruct{}}[rng.IntN(3)]}
		default:
			list := make([]any, rng.IntN(6))
			for j := range list {
				id += int64(1 + rng.IntN(3))
				list[j] = randomTaskRow(rng, id)
			}
			rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
			results[i] = []any{list}
		}
	}
	return responseOf(results)
}

// TestTaskDecodeMatchesReference decodes random listTasks multicall
// answers straight into tasks and the old way (kolo, normalize, then
// taskFromMap) and wants the same tasks, faults and errors.
func TestTaskDecodeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 500 {
		n := 1 + rng.IntN(5)
		doc := randomMultiCall(rng, n)
		checkTaskDecode(t, fmt.Sprint("case ", i), doc, n, koloDecodeResponse)
	}
}

// checkTaskDecode compares the streaming task decode of a multicall with
// the reference conversion of the generic values decode gives.
func checkTaskDecode(t *testing.T, name string, doc []byte, n int, decode func([]byte) (any, error)) {
	t.Helper()
	lists, faults, bad, err := streamingMultiCallTasks(doc, n)
	wlists, wfaults, wbad, werr := referenceMultiCallTasks(doc, n, decode)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%s: streaming error %v, reference %v\n%s", name, err, werr, doc)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(lists, wlists) {
		t.Fatalf("%s: streaming %+v\nreference %+v\n%s", name, lists, wlists, doc)
	}
	if !reflect.DeepEqual(faults, wfaults) {
		t.Fatalf("%s: faults %v, reference %v", name, faults, wfaults)
	}
	for i := range bad {
		if fmt.Sprint(bad[i]) != fmt.Sprint(wbad[i]) {
			t.Fatalf("%s: call %d: bad %v, reference %v\n%s", name, i, bad[i], wbad[i], doc)
		}
	}
}

// FuzzDecodeTasks feeds arbitrary bytes to the task decoder as a multicall
// of two listTasks calls: it must never panic, and whatever it makes of the
// bytes must be what the generic decoder plus the old conversion make of
// them.
func FuzzDecodeTasks(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 8 {
		f.Add(randomMultiCall(rng, 2))
	}
	f.Add([]byte("<methodResponse><params><param><value><array><data><value><array><data><value><array><data><value><struct><member><name>id</name><value><int>1</int></value></member></struct></value></data></array></value></data></array></value><value><struct><member><name>faultCode</name><value><int>1</int></value></member></struct></value></data></array></value></param></params></methodResponse>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTaskDecode(t, "fuzz", b, 2, decodeResponse)
	})
}

// benchListTasks is a listTasks multicall answer shaped like a nightly's:
// one call per image method, 300 tasks, rows as the hub writes them.
func benchListTasks() ([]byte, int) {
	const n = 300
	methods := []string{"kiwiBuild", "livemedia", "osbuildImage", "image", "imageBuilderBuild"}
	lists := make([][]any, len(methods))
	created := 1795834800.0
	for i := range n {
		m := i % 3
		compose := "Fedora-Rawhide-20261122.n.0"
		repo := "https://kojipkgs.example.invalid/compose/" + compose + "/compose/Everything/$arch/os"
		req := []any{"rawhide", []any{"x86_64", "aarch64"}, "git+https://pagure.example.invalid/fedora-kiwi-descriptions.git#0123abc", "teams/kde.kiwi",
			map[string]any{"profile": "KDE", "release": "20261122.n.0", "version": "Rawhide", "optional_arches": []any{"aarch64"}, "repos": []any{repo}, "use_buildroot_repo": true}}
		ts := created + float64(60*i)
		row := xstruct{
			{"id", int64(1420000000 + i)}, {"state", int64(2)},
			{"create_time", "2026-11-22 03:00:00+00:00"}, {"create_ts", ts},
			{"start_time", "2026-11-22 03:01:00+00:00"}, {"start_ts", ts + 60},
			{"completion_time", "2026-11-22 03:31:00+00:00"}, {"completion_ts", ts + 1860},
			{"channel_id", int64(12)}, {"host_id", int64(345)}, {"parent", nil}, {"label", nil},
			{"waiting", false}, {"awaited", nil}, {"owner", int64(4)}, {"method", methods[m]}, {"arch", "noarch"},
			{"priority", int64(20)}, {"weight", 4.0}, {"request", req},
			{"result", []any{map[string]any{"task_id": int64(1420000000 + i)}}}, {"owner_name", "releng"}, {"owner_type", int64(0)},
		}
		lists[m] = append(lists[m], row)
	}
	results := make([]any, len(methods))
	for i, l := range lists {
		if l == nil {
			l = []any{}
		}
		results[i] = []any{l}
	}
	return responseOf(results), n
}

// BenchmarkDecodeListTasks decodes one nightly's listTasks multicall (300
// tasks, about 700 KB) the old way — kolo into any, normalize, taskFromMap
// — and straight into tasks. allocs/task and B/task are what issue 16
// measures; the end-to-end figures over HTTP are BenchmarkNightlyImageTasks.
func BenchmarkDecodeListTasks(b *testing.B) {
	doc, n := benchListTasks()
	calls := 5
	for _, bc := range []struct {
		name   string
		decode func() ([][]Task, error)
	}{
		{"kolo-then-convert", func() ([][]Task, error) {
			lists, _, _, err := referenceMultiCallTasks(doc, calls, koloDecodeResponse)
			return lists, err
		}},
		{"streaming", func() ([][]Task, error) {
			lists, _, _, err := streamingMultiCallTasks(doc, calls)
			return lists, err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				lists, err := bc.decode()
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for _, l := range lists {
					got += len(l)
				}
				if got != n {
					b.Fatalf("%d tasks, want %d", got, n)
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*n), "allocs/task")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N*n), "B/task")
		})
	}
}
