package smtp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// relayer forwards a message to the upstream SMTP server, one connection
// per message.
type relayer struct {
	addr               string
	starttls           bool
	tls                *tls.Config
	username, password string
}

// send delivers raw from from to rcpts upstream. An answer of the
// upstream that refuses it is returned as its *gosmtp.SMTPError.
func (rl *relayer) send(ctx context.Context, from string, rcpts []string, raw []byte) (err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", rl.addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var c *gosmtp.Client
	if rl.starttls {
		c, err = gosmtp.NewClientStartTLS(conn, rl.tls)
		if err != nil {
			conn.Close()
			return fmt.Errorf("starttls: %v", err)
		}
	} else {
		c = gosmtp.NewClient(conn)
	}
	defer c.Close()
	if err := c.Hello("twice"); err != nil {
		return fmt.Errorf("hello: %v", err)
	}
	if rl.username != "" {
		if err := c.Auth(sasl.NewPlainClient("", rl.username, rl.password)); err != nil {
			return fmt.Errorf("auth: %v", err)
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	_ = c.Quit()
	return nil
}
