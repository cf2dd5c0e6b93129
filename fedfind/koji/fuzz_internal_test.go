package koji

import "testing"

// FuzzDecodeResponse feeds arbitrary bytes to the response decoder (kolo's
// parser plus composeci's repairs): a hub answer, however broken, gives a
// value or an error, never a panic that would take the process down.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		"<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><nil/></value></param>\n</params>\n</methodResponse>\n",
		"<methodResponse><params><param><value><array><data><value><i8>5368709120</i8></value><value><string>a</string></value></data></array></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><struct><member><name>x</name><value><struct></struct></value></member></struct></value></param></params></methodResponse>",
		"<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1014</int></value></member><member><name>faultString</name><value><string>server is offline</string></value></member></struct></value></fault></methodResponse>",
		"<methodResponse><params><param><value><array><data><value/><value>x</value></data></array></value></param></params></methodResponse>",
		"<methodResponse><params><param><value><dateTime.iso8601>20261122T03:00:00</dateTime.iso8601></value></param></params></methodResponse>",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeResponse(b)
	})
}
