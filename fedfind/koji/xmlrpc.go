package koji

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/kolo/xmlrpc"
)

// Koji fault codes a caller may branch on (koji/__init__.py).
const (
	FaultGeneric       = 1000 // GenericError: e.g. "Invalid method: NAME"
	FaultServerOffline = 1014 // ServerOffline: maintenance or database outage
	FaultParameter     = 1019 // ParameterError: wrong arguments
)

// Fault is an XML-RPC fault from the hub, with its code kept (kolo's
// Client.Call would flatten it into a string).
type Fault struct {
	Code   int
	String string
}

func (f *Fault) Error() string { return fmt.Sprintf("koji fault %d: %s", f.Code, f.String) }

// Is makes a ServerOffline fault match ErrTransient.
func (f *Fault) Is(target error) bool {
	return target == ErrTransient && f.Code == FaultServerOffline
}

// HTTPError is an answer with an HTTP status other than 200: the hub sends
// faults with 200, so this is a proxy or server failure (5xx, 408), a
// request the hub could not read (400) or a wrong URL (404, 405).
type HTTPError struct {
	URL    string
	Status int
	Body   string // the start of the body, for the log
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("koji: POST %s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// Is makes 408, 429 and 5xx match ErrTransient.
func (e *HTTPError) Is(target error) bool {
	return target == ErrTransient && (e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500)
}

var (
	// ErrTransient is matched (errors.Is) by failures worth trying again
	// later: fault 1014, HTTP 408/429/5xx after the transport's retries,
	// and transport errors. Faults like 1000 or 1019 are caller bugs and
	// do not match.
	ErrTransient = errors.New("transient Koji failure")
	// ErrNilParam is returned for a Go nil among call parameters, which
	// kolo would send as <value/> (read by the hub as '') or drop.
	ErrNilParam = errors.New("koji: nil parameter (leave the key out instead)")
	// ErrNotFound is returned when the hub answers nil for a task or user.
	ErrNotFound = errors.New("koji: not found")
	// ErrInvalidQuery is returned for a TaskQuery that cannot be sent.
	ErrInvalidQuery = errors.New("koji: invalid task query")
)

// IsTransient reports whether err is worth retrying later.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// Kwargs are keyword arguments. As the last parameter of a call they are
// sent as Koji's {"__starstar": true, ...} struct.
type Kwargs map[string]any

// Call is one method call of a multicall.
type Call struct {
	Method string
	Params []any
}

// Result is the outcome of one call of a multicall: a value (nil is a valid
// value, e.g. getTaskInfo of an unknown task) or a per-call error, usually
// a *Fault.
type Result struct {
	Value any
	Err   error
}

// Call calls one hub method. params follow Call's rules: no nil, times as
// time.Time or float64 epoch seconds, Kwargs last.
func (c *Client) Call(ctx context.Context, method string, params ...any) (any, error) {
	var v any
	err := c.call(ctx, method, params, func(d *decoder) (err error) {
		v, err = d.value()
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// call calls one hub method and hands the decoder, at the answer's value,
// to read, which reads that value into whatever the caller needs.
func (c *Client) call(ctx context.Context, method string, params []any, read func(d *decoder) error) error {
	body, err := encodeCall(method, params)
	if err != nil {
		return err
	}
	err = c.do(ctx, body, 1, func(data []byte) error { return readResponse(data, read) })
	if err != nil {
		return fmt.Errorf("koji: %s: %w", method, err)
	}
	return nil
}

// MultiCall sends calls as multicall requests of at most BatchSize calls
// each, one after the other, and returns one Result per call in order. A
// call's fault is its Result.Err. A failure of a whole request (HTTP error,
// top-level fault, cancelled context) is the returned error, and then no
// results are returned.
func (c *Client) MultiCall(ctx context.Context, calls []Call) ([]Result, error) {
	out := make([]Result, len(calls))
	errs, err := c.multiCall(ctx, calls, func(i int, d *decoder) (err error) {
		out[i].Value, err = d.value()
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, e := range errs {
		out[i].Err = e
	}
	return out, nil
}

// multiCall sends calls as MultiCall does, handing read the decoder at the
// value of call i, straight from the response, for it to read into what
// the caller needs: no generic value is built unless read builds one. The
// per-call faults come back in errs, indexed like calls.
func (c *Client) multiCall(ctx context.Context, calls []Call, read func(i int, d *decoder) error) (errs []error, err error) {
	errs = make([]error, len(calls))
	for start := 0; start < len(calls); start += c.batch {
		batch := calls[start:min(start+c.batch, len(calls))]
		if err := c.multiCallBatch(ctx, batch, errs[start:], func(i int, d *decoder) error { return read(start+i, d) }); err != nil {
			return nil, fmt.Errorf("koji: multicall of %d calls (from %d of %d): %w", len(batch), start, len(calls), err)
		}
	}
	return errs, nil
}

func (c *Client) multiCallBatch(ctx context.Context, batch []Call, errs []error, read func(i int, d *decoder) error) error {
	list := make([]any, len(batch))
	for i, call := range batch {
		if !validName(call.Method) {
			return fmt.Errorf("koji: invalid method name %q", call.Method)
		}
		params, err := prepareParams(call.Params)
		if err != nil {
			return fmt.Errorf("koji: %s: %w", call.Method, err)
		}
		list[i] = map[string]any{"methodName": call.Method, "params": params}
	}
	body, err := xmlrpc.EncodeMethodCall("multiCall", list)
	if err != nil {
		return fmt.Errorf("koji: encoding multicall: %w", err)
	}
	var faults []*Fault
	err = c.do(ctx, body, len(batch), func(data []byte) (err error) {
		faults, err = readMultiCall(data, len(batch), read)
		return err
	})
	if err != nil {
		return err
	}
	for i, f := range faults {
		if f != nil {
			c.faults.Add(1)
			errs[i] = fmt.Errorf("koji: %s: %w", batch[i].Method, f)
		}
	}
	return nil
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case []any:
		return fmt.Sprintf("an array of %d", len(x))
	}
	return fmt.Sprintf("a %T", v)
}

// validName reports whether s may be sent as a method or keyword name:
// ^[A-Za-z_][A-Za-z0-9_.]*$, checked by hand rather than by a regexp
// compiled at start-up (see docs/performance.md, "Start-up").
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// encodeCall encodes a methodCall with kolo after prepareParams made the
// parameters safe for it.
func encodeCall(method string, params []any) ([]byte, error) {
	if !validName(method) {
		return nil, fmt.Errorf("koji: invalid method name %q", method)
	}
	p, err := prepareParams(params)
	if err != nil {
		return nil, fmt.Errorf("koji: %s: %w", method, err)
	}
	body, err := xmlrpc.EncodeMethodCall(method, p...)
	if err != nil {
		return nil, fmt.Errorf("koji: encoding %s: %w", method, err)
	}
	return body, nil
}

// prepareParams copies params into values kolo encodes the way Koji reads
// them: no nil anywhere, time.Time as float64 epoch seconds, no unsigned
// integers, Kwargs (last only) as a __starstar struct.
func prepareParams(params []any) ([]any, error) {
	out := make([]any, len(params))
	for i, p := range params {
		if kw, ok := p.(Kwargs); ok {
			if i != len(params)-1 {
				return nil, errors.New("keyword arguments must be the last parameter")
			}
			m := make(map[string]any, len(kw)+1)
			for k, v := range kw {
				if !validName(k) || strings.Contains(k, ".") {
					return nil, fmt.Errorf("koji: invalid keyword argument name %q", k)
				}
				pv, err := prepareValue(v, k)
				if err != nil {
					return nil, err
				}
				m[k] = pv
			}
			m["__starstar"] = true
			out[i] = m
			continue
		}
		v, err := prepareValue(p, fmt.Sprintf("parameter %d", i))
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func prepareValue(v any, where string) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("%w: %s", ErrNilParam, where)
	case bool, string, int, int8, int16, int32, int64, float64:
		return x, nil
	case float32:
		return float64(x), nil
	case uint, uint8, uint16, uint32, uint64, uintptr:
		return nil, fmt.Errorf("koji: %s: unsigned integer %v (kolo sends it as <i4>; use int)", where, x)
	case time.Time:
		return epoch(x), nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case []int:
		out := make([]any, len(x))
		for i, n := range x {
			out[i] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			pe, err := prepareValue(e, fmt.Sprintf("%s[%d]", where, i))
			if err != nil {
				return nil, err
			}
			out[i] = pe
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if strings.ContainsAny(k, "<>&") {
				// kolo writes member names unescaped.
				return nil, fmt.Errorf("koji: %s: struct member name %q needs escaping", where, k)
			}
			pe, err := prepareValue(e, where+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = pe
		}
		return out, nil
	case Kwargs:
		return nil, fmt.Errorf("koji: %s: keyword arguments nested in a parameter", where)
	}
	return nil, fmt.Errorf("koji: %s: cannot send a %T", where, v)
}

// epoch is t as float64 epoch seconds at Koji's microsecond precision.
func epoch(t time.Time) float64 { return float64(t.Round(time.Microsecond).UnixMicro()) / 1e6 }

// fromEpoch is the inverse of epoch, rounded to the microsecond so that a
// double such as 1714540354.123456 gives back exactly .123456.
func fromEpoch(f float64) time.Time {
	sec := math.Floor(f)
	us := math.Round((f - sec) * 1e6)
	return time.Unix(int64(sec), int64(us)*1000).UTC()
}

// decodeResponse reads a methodResponse into a value (see decode.go for
// the types) or a *Fault.
func decodeResponse(data []byte) (any, error) {
	var v any
	err := readResponse(data, func(d *decoder) (err error) {
		v, err = d.value()
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Value conversions from decoded XML-RPC values: int64, float64, string,
// bool, []any, map[string]any, time.Time or nil; an empty <string> comes
// back as nil, as it did from kolo, so nil reads as "".

func asInt(v any) int {
	switch x := v.(type) {
	case int64:
		return int(x)
	case float64:
		return int(x)
	}
	return 0
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func asFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

// Koji renders TIMESTAMPTZ columns with isoformat(' '): the fraction only
// when non-zero, the offset since schema 1.22 and none before.
var kojiTimeLayouts = []struct {
	layout string
	zoned  bool
}{
	{"2006-01-02 15:04:05.999999999Z07:00", true},
	{"2006-01-02 15:04:05.999999999Z07", true},
	{"2006-01-02 15:04:05.999999999", false},
	{"2006-01-02T15:04:05.999999999Z07:00", true},
	{"2006-01-02T15:04:05.999999999", false},
}

// parseTime reads a Koji *_time string; one without an offset is UTC.
func parseTime(s string) (time.Time, error) {
	for _, l := range kojiTimeLayouts {
		var t time.Time
		var err error
		if l.zoned {
			t, err = time.Parse(l.layout, s)
		} else {
			t, err = time.ParseInLocation(l.layout, s, time.UTC)
		}
		if err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("koji: unknown time format %q", s)
}
