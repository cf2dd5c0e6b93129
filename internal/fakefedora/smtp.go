package fakefedora

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one message as the mail server received it.
type Mail struct {
	From string
	To   []string
	Data []byte
	User string // the authenticated user, "" if none
	TLS  bool   // sent over TLS (after STARTTLS)
	Helo string
}

// MailServerOptions configures a MailServer. The zero value accepts any mail
// in clear text, without authentication.
type MailServerOptions struct {
	// TLS enables STARTTLS with this configuration.
	TLS *tls.Config
	// User and Password, when set, are the only credentials accepted (PLAIN)
	// and MAIL is refused before AUTH.
	User, Password string
	// AllowInsecureAuth accepts AUTH without TLS.
	AllowInsecureAuth bool
	// RcptErr, when set, is the answer to every RCPT (e.g. an
	// *smtp.SMTPError with a 4xx or 5xx code).
	RcptErr error
	// Logf receives the server's error log; default discards.
	Logf func(format string, args ...any)
}

// MailServer is a real SMTP server (emersion/go-smtp) on 127.0.0.1 that
// records what it receives: the mail relay of the simulated Fedora.
type MailServer struct {
	opts MailServerOptions
	srv  *smtp.Server
	addr *net.TCPAddr
	done chan struct{}
	mu   sync.Mutex
	msgs []Mail
}

// StartMailServer serves SMTP on a random port of 127.0.0.1.
func StartMailServer(o MailServerOptions) (*MailServer, error) {
	s := &MailServer{opts: o, done: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{srv: s, conn: c}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.TLSConfig = o.TLS
	s.srv.AllowInsecureAuth = o.AllowInsecureAuth
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.ErrorLog = mailLog{o.Logf}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakefedora: mail server: %w", err)
	}
	s.addr = l.Addr().(*net.TCPAddr)
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(l)
	}()
	return s, nil
}

// Addr is the server's host:port; Port its port.
func (s *MailServer) Addr() string { return s.addr.String() }

// Port is the server's port.
func (s *MailServer) Port() int { return s.addr.Port }

// Messages returns the mail received so far.
func (s *MailServer) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.msgs...)
}

// Close stops the server.
func (s *MailServer) Close() {
	s.srv.Close()
	<-s.done
}

type mailLog struct{ logf func(string, ...any) }

func (l mailLog) Printf(format string, v ...any) {
	if l.logf != nil {
		l.logf("smtp server: "+format, v...)
	}
}

func (l mailLog) Println(v ...any) {
	if l.logf != nil {
		l.logf("smtp server: %s", fmt.Sprintln(v...))
	}
}

type mailSession struct {
	srv  *MailServer
	conn *smtp.Conn
	cur  Mail
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		o := s.srv.opts
		if o.User == "" || user != o.User || pass != o.Password {
			return smtp.ErrAuthFailed
		}
		s.cur.User = user
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.opts.User != "" && s.cur.User == "" {
		return smtp.ErrAuthRequired
	}
	s.cur.From = from
	_, s.cur.TLS = s.conn.TLSConnectionState()
	s.cur.Helo = s.conn.Hostname()
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.srv.opts.RcptErr != nil {
		return s.srv.opts.RcptErr
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, s.cur)
	s.srv.mu.Unlock()
	s.cur = Mail{User: s.cur.User}
	return nil
}

func (s *mailSession) Reset() { s.cur = Mail{User: s.cur.User} }

func (s *mailSession) Logout() error { return nil }

// Subject returns the message's Subject header, decoded ("" if it has none
// or the message does not parse).
func (m Mail) Subject() string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	s, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return msg.Header.Get("Subject")
	}
	return s
}

// Header returns one header of the message, as sent.
func (m Mail) Header(name string) string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	return msg.Header.Get(name)
}

// Text returns the message's text/plain body, its transfer encoding undone:
// the whole body of a plain message, the first text/plain part of a
// multipart one. It returns "" when there is none.
func (m Mail) Text() string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	return textPart(textproto.MIMEHeader(msg.Header), msg.Body)
}

func textPart(h textproto.MIMEHeader, body io.Reader) string {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return ""
			}
			if s := textPart(p.Header, p); s != "" {
				return s
			}
		}
	}
	if mt != "text/plain" {
		return ""
	}
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return ""
	}
	return string(b)
}
