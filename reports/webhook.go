package reports

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/backoff"
	"github.com/composeci/composeci/internal/httpclient"
)

// The headers of a webhook delivery (docs/messages.md).
const (
	// HeaderEvent is EventComposeCheckComplete.
	HeaderEvent = "X-Composeci-Event"
	// HeaderDelivery is the delivery's DeliveryID: the same on every retry
	// of one report version to one endpoint, so receivers can drop
	// duplicates.
	HeaderDelivery = "X-Composeci-Delivery"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body
	// under the endpoint's secret (SignWebhook).
	HeaderSignature = "X-Composeci-Signature"
)

// Errors of a webhook delivery, for callers to branch on.
var (
	// ErrWebhookRejected: the endpoint answered with a status retrying
	// cannot change (a 4xx other than 429, a redirect), or could not be
	// asked at all (a certificate that does not verify). It needs a person.
	ErrWebhookRejected = errors.New("webhook endpoint rejected the delivery")
	// ErrWebhookGaveUp: every attempt met a 5xx, a 429, a timeout or a
	// network error. A later delivery of the same version may succeed.
	ErrWebhookGaveUp = errors.New("webhook endpoint did not accept the delivery")
)

// Webhook is one [[webhook]] entry of the routing file: an HTTP endpoint
// told of reports with a signed JSON POST.
type Webhook struct {
	// URL is the endpoint, http or https. It may carry a token in its
	// query; logs and the ledger show Endpoint instead.
	URL string
	// SecretFile is where Secret was read from.
	SecretFile string
	// Secret is the HMAC key of the signature. It never prints.
	Secret Secret
	// When is when the webhook is told; "" means WhenChange.
	When When
	// Streams, when not empty, limit the webhook to composes of those
	// release streams.
	Streams []fedfind.StreamKind
}

// Endpoint names the webhook for logs and the ledger: its URL without
// user information, query or fragment ("?…" marks a dropped query).
func (w Webhook) Endpoint() string {
	u, err := url.Parse(w.URL)
	if err != nil {
		return "(unparsable webhook URL)"
	}
	s := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}

// Admits reports whether the webhook is told of r, given whether its
// compose's state changed: its When admits r and its Streams, if any,
// include r's stream.
func (w Webhook) Admits(r Report, changed bool) bool {
	if len(w.Streams) > 0 && !slices.Contains(w.Streams, fedfind.StreamKind(r.Stream.Kind)) {
		return false
	}
	return w.When.Admits(r, changed)
}

// webhookEntry is a [[webhook]] table as written.
type webhookEntry struct {
	URL        string   `toml:"url"`
	SecretFile string   `toml:"secret_file"`
	When       string   `toml:"when"`
	Streams    []string `toml:"streams"`
}

// webhook checks the entry and reads its secret; a relative secret_file is
// taken beside the routing file routingPath. Errors never quote the
// secret, and name the URL only as its Endpoint.
func (e webhookEntry) webhook(routingPath string) (Webhook, error) {
	u, err := url.Parse(strings.TrimSpace(e.URL))
	switch {
	case e.URL == "":
		return Webhook{}, fmt.Errorf("%w: no url", fedfind.ErrInvalidInput)
	case err != nil:
		return Webhook{}, fmt.Errorf("%w: url does not parse", fedfind.ErrInvalidInput)
	case u.Scheme != "http" && u.Scheme != "https":
		return Webhook{}, fmt.Errorf("%w: url scheme %q (want http or https)", fedfind.ErrInvalidInput, u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return Webhook{}, fmt.Errorf("%w: url has no host", fedfind.ErrInvalidInput)
	}
	w := Webhook{URL: u.String()}
	if w.When, err = ParseWhen(e.When); err != nil {
		return Webhook{}, fmt.Errorf("%s: %w", w.Endpoint(), err)
	}
	for _, s := range e.Streams {
		k := fedfind.StreamKind(strings.ToLower(strings.TrimSpace(s)))
		if !k.Known() {
			return Webhook{}, fmt.Errorf("%w: %s: unknown stream %q", fedfind.ErrInvalidInput, w.Endpoint(), s)
		}
		if !slices.Contains(w.Streams, k) {
			w.Streams = append(w.Streams, k)
		}
	}
	if e.SecretFile == "" {
		return Webhook{}, fmt.Errorf("%w: %s: no secret_file (deliveries are always signed)", fedfind.ErrInvalidInput, w.Endpoint())
	}
	w.SecretFile = e.SecretFile
	if !filepath.IsAbs(w.SecretFile) {
		w.SecretFile = filepath.Join(filepath.Dir(routingPath), w.SecretFile)
	}
	b, err := os.ReadFile(w.SecretFile)
	if err != nil {
		return Webhook{}, fmt.Errorf("%w: %s: reading secret_file: %w", fedfind.ErrInvalidInput, w.Endpoint(), err)
	}
	w.Secret = Secret(strings.TrimRight(string(b), "\r\n"))
	if w.Secret == "" {
		return Webhook{}, fmt.Errorf("%w: %s: secret_file %s is empty", fedfind.ErrInvalidInput, w.Endpoint(), w.SecretFile)
	}
	return w, nil
}

// SignWebhook returns the X-Composeci-Signature of a body: "sha256=" and
// the lower-case hex HMAC-SHA256 of the body's exact bytes under secret.
func SignWebhook(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook reports whether signature is body's under secret, in
// constant time: what a receiver written in Go does first.
func VerifyWebhook(secret, body []byte, signature string) bool {
	hexSum, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// WebhookOptions configures a WebhookSender. The zero value is usable: each
// field names its default.
type WebhookOptions struct {
	// Timeout bounds one attempt: connecting, sending, the answer's
	// headers. Default 10 s.
	Timeout time.Duration
	// Attempts is how many times a delivery is tried before giving up.
	// Default 5.
	Attempts int
	// Backoff spaces the attempts. Default 1 s doubling up to 30 s,
	// jittered. A Retry-After answer waits longer, up to Backoff.Max.
	Backoff backoff.Policy
	// Logger receives a line per delivery and per failed attempt (never the
	// secret or the URL's query). Default: discard.
	Logger *slog.Logger
	// Transport is the HTTP transport. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Clock stamps the ledger's records; default time.Now.
	Clock func() time.Time
}

// WebhookSender delivers notifications to webhooks, each report version
// once per endpoint, recorded in a Deliveries ledger. Its methods are safe
// for concurrent use.
type WebhookSender struct {
	opts   WebhookOptions
	client *httpclient.Client
	ledger Deliveries
	log    *slog.Logger
}

// NewWebhookSender returns a sender that records deliveries in ledger
// (usually the report Archive). A nil ledger is allowed for Send alone.
func NewWebhookSender(opts WebhookOptions, ledger Deliveries) *WebhookSender {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff == (backoff.Policy{}) {
		opts.Backoff = backoff.Policy{Base: time.Second, Max: 30 * time.Second, Jitter: true}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	// One attempt per Do: the attempts are spaced here, by
	// internal/backoff, so that a delivery's retries honour Retry-After
	// and are counted in its ledger record.
	// No logger for the client: go-retryablehttp would log the URL, query
	// (and any token in it) included.
	c := httpclient.New(httpclient.Options{Timeout: opts.Timeout, RetryMax: -1, Transport: opts.Transport})
	// A redirect is not followed: it would carry the signed body to an
	// address nobody configured.
	c.HTTPClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &WebhookSender{opts: opts, client: c, ledger: ledger, log: opts.Logger}
}

// RoundTrips reports how many HTTP requests the sender made, retries
// included.
func (s *WebhookSender) RoundTrips() int64 { return s.client.RoundTrips() }

// DeliveryIDFor returns the id of the delivery of n to w.
func DeliveryIDFor(w Webhook, n Notification) string {
	return DeliveryID(ChannelWebhook, w.URL, n.ComposeID, n.Version)
}

// Deliver delivers n to w unless the ledger shows this version already
// reached this endpoint, and records the delivery. It returns the
// delivery (the earlier one when nothing was sent) and whether it was sent
// now. A failure to record after the endpoint accepted returns sent true
// with the error: the next attempt would deliver again, under the same
// X-Composeci-Delivery id.
func (s *WebhookSender) Deliver(ctx context.Context, w Webhook, n Notification) (Delivery, bool, error) {
	if s.ledger == nil {
		return Delivery{}, false, errors.New("webhook: no delivery ledger")
	}
	id := DeliveryIDFor(w, n)
	if d, ok, err := s.ledger.Delivered(ctx, n.ComposeID, id); err != nil {
		return Delivery{}, false, fmt.Errorf("webhook %s: %w", w.Endpoint(), err)
	} else if ok {
		return d, false, nil
	}
	d, err := s.Send(ctx, w, n)
	if err != nil {
		return Delivery{}, false, err
	}
	// Accepted: a shutdown must not cut between the answer and the record.
	if err := s.ledger.RecordDelivery(context.WithoutCancel(ctx), n.ComposeID, d); err != nil {
		return d, true, fmt.Errorf("webhook %s accepted delivery %s, but recording it failed: %w", w.Endpoint(), d.ID, err)
	}
	return d, true, nil
}

// Send delivers n to w whatever the ledger says, retrying 5xx (but 501),
// 429, timeouts and network errors up to Attempts times, and returns the
// delivery to record. It stops retrying when ctx ends, but an attempt under
// way is let finish (Timeout bounds it): cutting it could lose the
// endpoint's acceptance. Errors wrap ErrWebhookRejected or
// ErrWebhookGaveUp, or ctx's error.
func (s *WebhookSender) Send(ctx context.Context, w Webhook, n Notification) (Delivery, error) {
	body, err := n.JSON()
	if err != nil {
		return Delivery{}, err
	}
	if w.Secret == "" {
		return Delivery{}, fmt.Errorf("%w: %s: no secret to sign with", ErrWebhookRejected, w.Endpoint())
	}
	d := Delivery{ID: DeliveryIDFor(w, n), Channel: ChannelWebhook, Endpoint: w.Endpoint(), Version: n.Version}
	sig := SignWebhook([]byte(w.Secret), body)
	var last error
	for attempt := 0; attempt < s.opts.Attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return Delivery{}, stopped(d.Endpoint, err, last)
		}
		status, wait, retry, err := s.attempt(ctx, w, d.ID, body, sig)
		if err == nil {
			d.Attempts, d.Status, d.DeliveredAt = attempt+1, status, s.opts.Clock().UTC().Truncate(time.Second)
			s.log.InfoContext(ctx, "delivered compose check notification", "compose", n.ComposeID, "webhook", d.Endpoint,
				"delivery", d.ID, "status", status, "attempts", d.Attempts)
			return d, nil
		}
		last = err
		if !retry {
			s.log.WarnContext(ctx, "webhook rejected the notification", "compose", n.ComposeID, "webhook", d.Endpoint,
				"delivery", d.ID, "err", err)
			return Delivery{}, fmt.Errorf("%w: %s: %w", ErrWebhookRejected, d.Endpoint, err)
		}
		if attempt+1 == s.opts.Attempts {
			break
		}
		delay := max(s.opts.Backoff.Delay(attempt), min(wait, max(s.opts.Backoff.Max, s.opts.Backoff.Base)))
		s.log.DebugContext(ctx, "webhook attempt failed; retrying", "compose", n.ComposeID, "webhook", d.Endpoint,
			"delivery", d.ID, "attempt", attempt+1, "wait", delay, "err", err)
		if !backoff.Sleep(ctx, delay) {
			return Delivery{}, stopped(d.Endpoint, ctx.Err(), last)
		}
	}
	s.log.WarnContext(ctx, "webhook did not accept the notification", "compose", n.ComposeID, "webhook", d.Endpoint,
		"delivery", d.ID, "attempts", s.opts.Attempts, "err", last)
	return Delivery{}, fmt.Errorf("%w: %s after %d attempts: %w", ErrWebhookGaveUp, d.Endpoint, s.opts.Attempts, last)
}

// stopped is the error of a delivery given up because ctx ended.
func stopped(endpoint string, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("webhook %s: %w", endpoint, ctxErr)
	}
	return fmt.Errorf("webhook %s: %w (last attempt: %w)", endpoint, ctxErr, last)
}

// attempt makes one POST. It returns the accepting status, or an error
// with whether it is worth retrying and how long the endpoint asked to
// wait (Retry-After).
func (s *WebhookSender) attempt(ctx context.Context, w Webhook, id string, body []byte, sig string) (status int, wait time.Duration, retry bool, err error) {
	// A delivery is sent again under the same delivery id, for the
	// receiver to drop a second copy: safe to repeat after a lost answer.
	rctx := httpclient.Replayable(context.WithoutCancel(ctx))
	req, err := retryablehttp.NewRequestWithContext(rctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, false, errors.New("building the request failed") // the error would quote the URL
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "composeci")
	req.Header.Set(HeaderEvent, EventComposeCheckComplete)
	req.Header.Set(HeaderDelivery, id)
	req.Header.Set(HeaderSignature, sig)
	resp, err := s.client.Do(req)
	retry, _ = httpclient.CheckRetry(rctx, resp, err)
	if err != nil {
		return 0, 0, retry, scrubURL(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, false, nil
	}
	return 0, retryAfter(resp.Header.Get("Retry-After"), s.opts.Clock()), retry, fmt.Errorf("HTTP %s", resp.Status)
}

// scrubURL keeps a transport error's cause but not the URL it quotes,
// which may hold a token.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
