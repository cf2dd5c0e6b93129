package reports

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/composeci/composeci/internal/fakefedora"
)

// received is one message as the test SMTP server got it.
type received = fakefedora.Mail

// smtpServer is the simulated mail relay: a real SMTP server (emersion/go-smtp)
// on 127.0.0.1:0 that records what it receives.
type smtpServer struct {
	*fakefedora.MailServer
	port int
}

type serverOpts struct {
	tls               *tls.Config
	user, pass        string
	allowInsecureAuth bool
	rcptErr           error
}

func startSMTP(t *testing.T, o serverOpts) *smtpServer {
	t.Helper()
	srv, err := fakefedora.StartMailServer(fakefedora.MailServerOptions{TLS: o.tls, User: o.user, Password: o.pass,
		AllowInsecureAuth: o.allowInsecureAuth, RcptErr: o.rcptErr, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &smtpServer{MailServer: srv, port: srv.Port()}
}

func (s *smtpServer) messages() []received { return s.Messages() }

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "composeci test SMTP"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

var mailClock = func() time.Time { return time.Date(2026, 11, 22, 19, 0, 0, 0, time.UTC) }

func newTestMailer(t *testing.T, cfg MailConfig, logger *slog.Logger) *Mailer {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "composeci <rawhide@example.org>"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.Clock = mailClock
	m, err := NewMailer(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// parsed is a received message taken apart.
type parsed struct {
	Header      netmail.Header
	Subject     string
	ContentType string
	Parts       map[string]string // content type -> decoded body, LF line ends
	PartOrder   []string
}

func parseMessage(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("reading message: %v", err)
	}
	p := parsed{Header: msg.Header, Parts: map[string]string{}}
	p.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	p.ContentType = mt
	if mt != "multipart/alternative" {
		return p
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable itself
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		p.Parts[ct] = strings.ReplaceAll(string(b), "\r\n", "\n")
		p.PartOrder = append(p.PartOrder, ct)
	}
	return p
}

// TestSendNoTLS sends the example report over plain SMTP and checks every
// header, both parts and the envelope.
func TestSendNoTLS(t *testing.T) {
	srv := startSMTP(t, serverOpts{})
	var logs bytes.Buffer
	m := newTestMailer(t, MailConfig{Host: "127.0.0.1", Port: srv.port, TLS: TLSNone},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	r := exampleReport(t)
	to := []string{"test-reports@lists.example.org", "QA <qa@example.org>", "qa@EXAMPLE.org"}
	sent, err := m.Send(context.Background(), r, to)
	if err != nil {
		t.Fatal(err)
	}
	if ok, failed := m.Stats(); ok != 1 || failed != 0 {
		t.Errorf("Stats() = %d sent, %d failed; want 1, 0", ok, failed)
	}
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages", len(msgs))
	}
	got := msgs[0]
	if got.TLS {
		t.Error("TLS used with policy none")
	}
	if got.From != "rawhide@example.org" {
		t.Errorf("envelope from = %q", got.From)
	}
	if fmt.Sprint(got.To) != "[qa@example.org test-reports@lists.example.org]" {
		t.Errorf("envelope recipients = %v (each address once)", got.To)
	}
	p := parseMessage(t, got.Data)
	h := p.Header
	if h.Get("From") != `"composeci" <rawhide@example.org>` {
		t.Errorf("From = %q", h.Get("From"))
	}
	if h.Get("To") != `"QA" <qa@example.org>, <test-reports@lists.example.org>` {
		t.Errorf("To = %q", h.Get("To"))
	}
	if p.Subject != Subject(r) {
		t.Errorf("Subject = %q, want %q", p.Subject, Subject(r))
	}
	wantID := "<" + MessageID(r.ComposeID, to, "") + ">"
	if h.Get("Message-Id") != wantID || "<"+sent.MessageID+">" != wantID {
		t.Errorf("Message-ID = %q (Send said %q), want %q", h.Get("Message-Id"), sent.MessageID, wantID)
	}
	if !regexp.MustCompile(`^<[0-9a-f]{16}\.Fedora-Rawhide-20261122\.n\.0@composeci>$`).MatchString(wantID) {
		t.Errorf("Message-ID %q is not <16 hex digits.compose@composeci>", wantID)
	}
	if d, err := h.Date(); err != nil || !d.Equal(mailClock()) {
		t.Errorf("Date = %v, %v", d, err)
	}
	for k, v := range map[string]string{"Auto-Submitted": "auto-generated", "X-Composeci-Compose": r.ComposeID,
		"X-Composeci-Problem": "yes", "Mime-Version": "1.0"} {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	if p.ContentType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q", p.ContentType)
	}
	if fmt.Sprint(p.PartOrder) != "[text/plain text/html]" {
		t.Errorf("parts = %v, want text then HTML", p.PartOrder)
	}
	var text, html bytes.Buffer
	if err := RenderText(&text, r); err != nil {
		t.Fatal(err)
	}
	if err := RenderHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if p.Parts["text/plain"] != text.String() {
		t.Errorf("text part differs from the text report:\n%s", firstDiff(text.Bytes(), []byte(p.Parts["text/plain"])))
	}
	if p.Parts["text/html"] != html.String() {
		t.Errorf("HTML part differs from the HTML report:\n%s", firstDiff(html.Bytes(), []byte(p.Parts["text/html"])))
	}
	if !strings.Contains(logs.String(), sent.MessageID) {
		t.Errorf("the send was not logged with its Message-ID: %s", logs.String())
	}
}

func TestSendOpportunistic(t *testing.T) {
	serverTLS, pool := selfSigned(t)
	for _, tt := range []struct {
		name    string
		tls     *tls.Config
		wantTLS bool
	}{
		{"a server without STARTTLS gets clear text", nil, false},
		{"a server with STARTTLS gets TLS", serverTLS, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, serverOpts{tls: tt.tls})
			m := newTestMailer(t, MailConfig{Host: "127.0.0.1", Port: srv.port, TLS: TLSOpportunistic,
				TLSConfig: &tls.Config{RootCAs: pool}}, nil)
			if _, err := m.Send(context.Background(), exampleReport(t), []string{"a@example.org"}); err != nil {
				t.Fatal(err)
			}
			msgs := srv.messages()
			if len(msgs) != 1 || msgs[0].TLS != tt.wantTLS {
				t.Errorf("messages %d, TLS %v; want 1, %v", len(msgs), len(msgs) == 1 && msgs[0].TLS, tt.wantTLS)
			}
		})
	}
}

// TestSendStartTLSWithAuth is the production shape: STARTTLS required,
// PLAIN auth inside TLS, a server certificate verified against a CA.
func TestSendStartTLSWithAuth(t *testing.T) {
	serverTLS, pool := selfSigned(t)
	srv := startSMTP(t, serverOpts{tls: serverTLS, user: "composeci", pass: "s3cret-pw"})
	var logs bytes.Buffer
	m := newTestMailer(t, MailConfig{Host: "127.0.0.1", Port: srv.port, Username: "composeci", Password: "s3cret-pw",
		TLSConfig: &tls.Config{RootCAs: pool}, HELO: "composeci.example.org"},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if _, err := m.Send(context.Background(), exampleReport(t), []string{"a@example.org"}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != "composeci" || msgs[0].Helo != "composeci.example.org" {
		t.Fatalf("got %+v", msgs)
	}
	if strings.Contains(logs.String(), "s3cret-pw") {
		t.Error("the password was logged")
	}
}

func TestSendStartTLSFailures(t *testing.T) {
	serverTLS, _ := selfSigned(t)
	for _, tt := range []struct {
		name       string
		srv        serverOpts
		noStartTLS bool // the error says so, with the hint, and is permanent
	}{
		{"a server without STARTTLS is refused", serverOpts{}, true},
		{"a certificate that does not verify is refused", serverOpts{tls: serverTLS}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, tt.srv)
			m := newTestMailer(t, MailConfig{Host: "127.0.0.1", Port: srv.port}, nil) // default: starttls, system roots
			_, err := m.Send(context.Background(), exampleReport(t), []string{"a@example.org"})
			if err == nil {
				t.Fatal("sent anyway")
			}
			if n := len(srv.messages()); n != 0 {
				t.Errorf("server got %d messages", n)
			}
			server := fmt.Sprintf("127.0.0.1:%d", srv.port)
			if !strings.Contains(err.Error(), " via "+server+": ") {
				t.Errorf("the error does not name the server %s: %v", server, err)
			}
			if errors.Is(err, ErrNoStartTLS) != tt.noStartTLS || Permanent(err) != tt.noStartTLS {
				t.Errorf("err = %v: ErrNoStartTLS %v, Permanent %v, want %v", err, errors.Is(err, ErrNoStartTLS), Permanent(err), tt.noStartTLS)
			}
			if tt.noStartTLS && !strings.Contains(err.Error(), "--smtp-tls none") {
				t.Errorf("no hint of --smtp-tls none: %v", err)
			}
		})
	}
}

// TestSendAuthWithoutTLS authenticates in clear text, which PLAIN allows
// only to localhost (here, with the server's AllowInsecureAuth).
func TestSendAuthWithoutTLS(t *testing.T) {
	srv := startSMTP(t, serverOpts{user: "composeci", pass: "pw", allowInsecureAuth: true})
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COMPOSECI_TEST_SMTP_PASSWORD", "pw")
	for name, cfg := range map[string]MailConfig{
		"password":      {Password: "pw"},
		"password file": {PasswordFile: pwFile},
		"password env":  {PasswordEnv: "COMPOSECI_TEST_SMTP_PASSWORD"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Host, cfg.Port, cfg.TLS, cfg.Username = "127.0.0.1", srv.port, TLSNone, "composeci"
			m := newTestMailer(t, cfg, nil)
			if _, err := m.Send(context.Background(), exampleReport(t), []string{"a@example.org"}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := len(srv.messages()); n != 3 {
		t.Errorf("server got %d messages, want 3", n)
	}
	m := newTestMailer(t, MailConfig{Host: "127.0.0.1", Port: srv.port, TLS: TLSNone, Username: "composeci", Password: "wrong"}, nil)
	_, err := m.Send(context.Background(), exampleReport(t), []string{"a@example.org"})
	if err == nil {
		t.Fatal("sent with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error quotes the password: %v", err)
	}
	if Retryable(err) {
		t.Errorf("a failed login is not worth retrying: %v", err)
	}
}

func TestSendRetryable(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"a temporary refusal is retried", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}, true},
		{"a permanent refusal is not", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, serverOpts{rcptErr: tt.err})
			m := newTestMailer(t, MailConfig{Host: "127.0.0.1", Port: srv.port, TLS: TLSNone}, nil)
			_, err := m.Send(context.Background(), exampleReport(t), []string{"a@example.org"})
			if err == nil {
				t.Fatal("no error")
			}
			if ok, failed := m.Stats(); ok != 0 || failed != 1 {
				t.Errorf("Stats() = %d sent, %d failed; want 0, 1", ok, failed)
			}
			if Retryable(err) != tt.retry {
				t.Errorf("Retryable(%v) = %v", err, !tt.retry)
			}
		})
	}
	// Nobody listening: a network error, worth retrying.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	m := newTestMailer(t, MailConfig{Host: "127.0.0.1", Port: port, TLS: TLSNone}, nil)
	if _, err := m.Send(context.Background(), exampleReport(t), []string{"a@example.org"}); err == nil || !Retryable(err) {
		t.Errorf("connection refused: err %v, retryable %v", err, Retryable(err))
	}
}

func TestSendWithoutRecipients(t *testing.T) {
	m := newTestMailer(t, MailConfig{Host: "127.0.0.1", TLS: TLSNone}, nil)
	if _, err := m.Send(context.Background(), exampleReport(t), nil); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("err = %v, want ErrNoRecipients", err)
	}
}

func TestMessageIDIsDeterministic(t *testing.T) {
	a := MessageID("Fedora-Rawhide-20261122.n.0", []string{"b@example.org", "a@example.org"}, "")
	b := MessageID("Fedora-Rawhide-20261122.n.0", []string{"A <A@example.org>", "b@example.org", "a@example.org"}, "")
	if a != b {
		t.Errorf("one compose and recipient set gave %q and %q", a, b)
	}
	if c := MessageID("Fedora-Rawhide-20261122.n.0", []string{"a@example.org"}, ""); c == a {
		t.Error("another recipient set gave the same Message-ID")
	}
	if c := MessageID("Fedora-Rawhide-20261122.n.1", []string{"a@example.org", "b@example.org"}, ""); c == a {
		t.Error("another compose gave the same Message-ID")
	}
	if c := MessageID("Fedora-Rawhide-20261122.n.0", []string{"a@example.org", "b@example.org"}, "qa.example.org"); !strings.HasSuffix(c, "@qa.example.org") {
		t.Errorf("domain not used: %q", c)
	}
}

// TestSecretNeverPrints logs and prints a config holding a password.
func TestSecretNeverPrints(t *testing.T) {
	cfg := MailConfig{Host: "smtp.example.org", Username: "u", Password: "hunter2"}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v %+v %#v %s", cfg, cfg, cfg, cfg.Password)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "cfg", cfg, "password", cfg.Password)
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "cfg", cfg, "password", cfg.Password)
	if strings.Contains(b.String(), "hunter2") {
		t.Errorf("the password printed: %s", b.String())
	}
}

func TestNewMailerRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]MailConfig{
		"no host":        {From: "a@example.org"},
		"no from":        {Host: "h"},
		"bad from":       {Host: "h", From: "nope"},
		"bad TLS policy": {Host: "h", From: "a@example.org", TLS: "always"},
		"bad auth":       {Host: "h", From: "a@example.org", Username: "u", Password: "p", Auth: "kerberos"},
		"no password":    {Host: "h", From: "a@example.org", Username: "u"},
		"unset env":      {Host: "h", From: "a@example.org", Username: "u", PasswordEnv: "COMPOSECI_TEST_UNSET_VARIABLE"},
		"bad port":       {Host: "h", From: "a@example.org", Port: 70000},
	} {
		if _, err := NewMailer(cfg, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestGoldenEmail pins the whole message, with its date, Message-ID and
// MIME boundary fixed.
func TestGoldenEmail(t *testing.T) {
	m := newTestMailer(t, MailConfig{Host: "127.0.0.1", TLS: TLSNone}, nil)
	m.boundary = "composeci-golden-boundary"
	var b bytes.Buffer
	if err := m.WriteMessage(&b, exampleReport(t), []string{"test-reports@lists.example.org"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "example.eml", b.Bytes())
}
