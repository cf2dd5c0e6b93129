package koji

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeResponse feeds arbitrary bytes to the response decoder (kolo's
// parser plus composeci's repairs): a hub answer, however broken, gives a
// value or an error, never both and never a panic that would take the
// process down. A value holds only the documented types (see decode.go),
// nested no deeper than maxValueDepth, with no empty string (an empty
// <string> is nil); a fault is a *Fault; decoding is deterministic.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		"<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><nil/></value></param>\n</params>\n</methodResponse>\n",
		"<methodResponse><params><param><value><array><data><value><i8>5368709120</i8></value><value><string>a</string></value></data></array></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><struct><member><name>x</name><value><struct></struct></value></member></struct></value></param></params></methodResponse>",
		"<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1014</int></value></member><member><name>faultString</name><value><string>server is offline</string></value></member></struct></value></fault></methodResponse>",
		"<methodResponse><params><param><value><array><data><value/><value>x</value></data></array></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><dateTime.iso8601>20261122T03:00:00</dateTime.iso8601></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><base64>aGVsbG8=</base64></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><array><data><value><base64></base64></value><value><string/></value><value></value></data></array></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><ex:double>1.5e3</ex:double></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><string><![CDATA[a<b]]>&amp;&#13;</string></value></param></params></methodResponse>",
		"<!DOCTYPE x [<!ENTITY a 'b'>]><methodResponse/>",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeResponse(b)
		if err != nil {
			if v != nil {
				t.Fatalf("both a value %#v and an error %v", v, err)
			}
			var fault *Fault
			if errors.As(err, &fault) && fault == nil {
				t.Fatalf("nil fault: %v", err)
			}
		} else {
			checkDecodedValue(t, v, 0)
		}
		v2, err2 := decodeResponse(b)
		if !reflect.DeepEqual(v, v2) || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("not deterministic: %#v, %v then %#v, %v", v, err, v2, err2)
		}
	})
}

func checkDecodedValue(t *testing.T, v any, depth int) {
	t.Helper()
	if depth > maxValueDepth+1 {
		t.Fatalf("value nested %d deep", depth)
	}
	switch x := v.(type) {
	case nil, int64, float64, bool, time.Time:
	case string:
		if x == "" {
			t.Fatal("empty string decoded as \"\", not nil")
		}
	case []any:
		for _, e := range x {
			checkDecodedValue(t, e, depth+1)
		}
	case map[string]any:
		for _, e := range x {
			checkDecodedValue(t, e, depth+1)
		}
	default:
		t.Fatalf("decoded a %T: %#v", v, v)
	}
}
