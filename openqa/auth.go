package openqa

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Credentials are an openQA API key and secret. Their String and LogValue
// never show the secret, and only the start of the key, so a Credentials
// value can be logged or wrapped in an error without leaking it.
type Credentials struct {
	Key    string
	Secret string
}

// Empty reports whether no key is set: requests then go out unsigned, which
// openQA serves anonymously on read routes and refuses on operator routes.
func (c Credentials) Empty() bool { return c.Key == "" }

// String shows the key's first characters and hides the secret.
func (c Credentials) String() string {
	if c.Empty() {
		return "openqa.Credentials{none}"
	}
	return fmt.Sprintf("openqa.Credentials{Key:%s Secret:%s}", redactKey(c.Key), redacted(c.Secret))
}

// GoString keeps %#v from printing the fields raw.
func (c Credentials) GoString() string { return c.String() }

// LogValue makes slog print the redacted form.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key", redactKey(c.Key)),
		slog.String("secret", redacted(c.Secret)),
	)
}

func redactKey(k string) string {
	if len(k) <= 4 {
		return strings.Repeat("*", len(k))
	}
	return k[:4] + "…"
}

func redacted(s string) string {
	if s == "" {
		return "(none)"
	}
	return "(redacted)"
}

// LoadCredentials picks the API key and secret from, in order: the values
// given (e.g. flags or config), a secret file, and the environment variables
// the openQA Perl client reads (OPENQA_API_KEY, OPENQA_API_SECRET). A secret
// file holds the secret alone, surrounding whitespace ignored; keeping it in
// a file keeps it out of process listings and shell history. A key without a
// secret (or the reverse) is an error, since every request would be refused.
func LoadCredentials(key, secret, secretFile string, getenv func(string) string) (Credentials, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Credentials{Key: key, Secret: secret}
	if c.Secret == "" && secretFile != "" {
		raw, err := os.ReadFile(secretFile)
		if err != nil {
			return Credentials{}, fmt.Errorf("openqa secret file: %w", err)
		}
		c.Secret = strings.TrimSpace(string(raw))
		if c.Secret == "" {
			return Credentials{}, fmt.Errorf("openqa secret file %s is empty", secretFile)
		}
	}
	if c.Key == "" {
		c.Key = getenv("OPENQA_API_KEY")
	}
	if c.Secret == "" {
		c.Secret = getenv("OPENQA_API_SECRET")
	}
	switch {
	case c.Key != "" && c.Secret == "":
		return Credentials{}, fmt.Errorf("openqa: an API key is set but no secret")
	case c.Key == "" && c.Secret != "":
		return Credentials{}, fmt.Errorf("openqa: an API secret is set but no key")
	}
	return c, nil
}

// Sign returns the X-API-Hash for a request target (path and query exactly
// as sent) and a microtime string (exactly as sent): lower-case hex of
// HMAC-SHA1 keyed with the secret over target+microtime. openQA compares it
// case-sensitively.
func Sign(secret, target, microtime string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(target))
	m.Write([]byte(microtime))
	return hex.EncodeToString(m.Sum(nil))
}

// signingTransport signs each request as it goes out. It sits under the
// retrying client, so every attempt, retries included, carries a fresh
// timestamp and a hash of the bytes actually sent: a retry after a long
// backoff is never refused as stale.
type signingTransport struct {
	creds Credentials
	now   func() time.Time
	next  http.RoundTripper
}

func (t *signingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if r.Header.Get("Accept") == "" {
		r.Header.Set("Accept", "application/json")
	}
	if !t.creds.Empty() {
		ts := strconv.FormatInt(t.now().Unix(), 10)
		r.Header.Set("X-API-Key", t.creds.Key)
		r.Header.Set("X-API-Microtime", ts)
		r.Header.Set("X-API-Hash", Sign(t.creds.Secret, r.URL.RequestURI(), ts))
	}
	return t.next.RoundTrip(r)
}
