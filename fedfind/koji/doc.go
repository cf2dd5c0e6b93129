// Package koji is composeci's client for a Koji hub: the anonymous,
// read-only XML-RPC calls that tell whether a compose's image tasks exist and
// have finished.
//
// Requests are encoded with github.com/kolo/xmlrpc's encoder; kolo's
// Client.Call has no context, loses fault codes in an error string and turns
// HTTP errors into strings, so the client POSTs the encoded body itself
// through internal/httpclient (retries on transport errors, 5xx and 429,
// never on faults, which Koji sends with HTTP 200), checks the status, and
// decodes the answer with its own decoder into a value or a typed *Fault.
//
// kolo's encoder writes Go nil as <value/>, which the hub reads as ”, and a
// nil top-level argument as an empty <param>, which the hub drops, shifting
// the arguments after it. The client therefore refuses to encode nil at all
// (ErrNilParam) and never needs to: top-level tasks are selected by filtering
// parent == 0 on the client. Times go out as float64 epoch seconds (the hub
// rejects <dateTime.iso8601>), and unsigned integers are refused because kolo
// writes them as <i4> whatever their size.
//
// The decoder (decode.go) reads the answer's bytes in one pass. Task
// answers (listTasks, getTaskInfo, getTaskChildren, alone or in a
// multicall) go straight into Task values, member by member, never through
// a map; other answers (Call, MultiCall, getUser) become the values kolo's
// decoder gave: <i8> arrives as int64, <double> as float64, <nil/> as nil,
// an empty <string> as nil, an empty <struct> as an empty map. A task's
// fields read <nil/> as zero rather than failing the answer, and its times
// are read from the *_ts doubles, with the *_time strings (with or without
// fraction and offset) as a fallback.
//
// Many calls go out as one multicall request ("multiCall", the Python
// client's name) in batches of Options.BatchSize; a call's fault comes back
// in its Result and never fails the batch, while a top-level fault does.
//
// ListTasks answers task queries through a per-client go-cache with
// singleflight, so concurrent identical queries make one request. A query is
// answered from a cached one only when the cached query is at least as broad
// on every filter, the cached rows then being filtered locally; fedfind 1.x
// compared only the keys both queries had, so a cached narrower query could
// answer a broader one with too few tasks. A multi-method query is cached per
// method, since Koji's method filter is a scalar and each method is its own
// listTasks call anyway. CachePolicy lets a completeness check refuse cached
// answers that might have changed since.
package koji
